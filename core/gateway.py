"""The authenticating gateway (nginx) in front of the engine: one nginx.conf for every target.

Why: vLLM's API key (VLLM_API_KEY / --api-key) only guards paths under /v1, /v2, /inference and
/cohere. `/invocations` serves a full completion without it, and /tokenize, /detokenize, /pooling,
/ping, /version, /metrics, /docs and /openapi.json answer too (vllm-project/vllm#58144; seen here
on vLLM 0.32.0, tests/engine). So the engine listens on 127.0.0.1 only and nginx, in the same pod
or on the same host, is the only way in:

- listen_port (0.0.0.0): exactly the allowlisted (path, method) pairs, each only with
  `Authorization: Bearer <key>`; a missing or wrong key gets 401 with a small JSON body, a wrong
  method 405, every other path 404, none of them reaching the engine. `GET /health` needs no key
  and answers the engine's own status (200, or 503 for anything else), with no body from it.
- tls (optional): listen_port speaks TLS only (`listen ... ssl`, TLS 1.2 and 1.3), with the certificate
  chain and private key read from files (a Secret volume, or a root-only directory on the host); a plain
  HTTP request on that port gets nginx's 400 and never reaches a route. plain_port (optional) then serves
  the same routes without TLS, for clients inside the cluster or VPC only (no public load balancer targets it).
- metrics_port (0.0.0.0): only `GET /metrics`, proxied to the engine, for Prometheus inside the
  cluster or VPC; no load balancer or security-group rule exposes it.

The key is in neither the conf nor any command line: the conf `include`s key_file (written from
a Secret, see auth_map_entry) inside a `map $http_authorization ...` block.

Runs as any non-root user with a read-only root filesystem: the pid file and nginx's temp paths
are under runtime_dir (a writable emptyDir or /tmp), logs go to stdout/stderr, ports are > 1024,
and the conf has no `user` directive. Start it with `nginx_argv()`. Works with Debian bookworm's
nginx 1.22 (the tests) and the official image (GATEWAY_IMAGE).

Graceful shutdown: on SIGQUIT nginx stops accepting connections and lets workers finish the
requests in flight, for at most graceful_shutdown_seconds (worker_shutdown_timeout). SIGQUIT is
the official image's STOPSIGNAL (nginx/docker-nginx, stable/alpine-slim/Dockerfile, "STOPSIGNAL
SIGQUIT", since commit 3fb70dd of 2020-11-24), so Kubernetes and `docker stop` send it; SIGTERM
would make nginx exit at once and cut streams.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Optional

# Production gateway image, pinned by tag and index digest. nginx 1.30.6 (stable) on Alpine 3.24.3,
# built 2026-10-21: docker-library/repo-info repos/nginx/remote/stable-alpine.md lists that digest
# for stable-alpine = 1.30.6-alpine. The tests run Debian bookworm's nginx 1.22.1; the conf uses
# only directives both have (none newer than 1.19.5's `-e`).
GATEWAY_IMAGE = (
    "docker.io/library/nginx:1.30.6-alpine@sha256:0e52bd054126cdc040b1276c0af347aeb02a41b9cfe305d6094767ac30e97949"
)
# Reachable from mainland China without Docker Hub: Alibaba Cloud Linux 3's nginx image in ACR,
# as Alibaba's ACK documentation uses it (CPU topology-aware scheduling example). It is nginx
# 1.20.1, built 2024-02-21, its stop signal and user are not known here, and it was not run here:
# check it before relying on it (or mirror GATEWAY_IMAGE into your own ACR).
GATEWAY_IMAGE_CN = (
    "alibaba-cloud-linux-3-registry.cn-hangzhou.cr.aliyuncs.com/alinux3/nginx_optimized:20240221-1.20.1-2.3.0"
)

DEFAULT_ROUTES: tuple[tuple[str, str], ...] = (
    ("/v1/models", "GET"),
    ("/v1/chat/completions", "POST"),
    ("/v1/completions", "POST"),
)
# What the gateway's container asks for beside the engine in a serving pod (the Kubernetes targets): sizing checks
# add it to the engine's request (core.config.placement), the pod spec requests it
# (components/kubernetes/serving_workload.py GATEWAY_RESOURCES).
REQUEST_MILLI_CPU = 250
REQUEST_MEMORY_MIB = 128
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"

# Timeouts and body size, from the model's maximum context (see the two functions below).
WORST_CASE_TOKENS_PER_SECOND = 10  # a long generation on a busy server, one request's own rate
QUEUE_AND_PREFILL_SECONDS = 300  # waiting for a batch slot plus prefill of a long prompt
WORST_CASE_BYTES_PER_TOKEN = 64  # a token's text as JSON: long tokens, \uXXXX escapes (6-12 bytes a character)
BODY_OVERHEAD_BYTES = 1 << 20  # roles, parameters, several messages, tool schemas
CLIENT_SEND_TIMEOUT_SECONDS = 120  # a client that reads nothing of the stream for 2 minutes is dropped

# The characters of a key (core/settings.py API_KEY_PATTERN): none of them is special inside a
# double-quoted nginx string ("), escape (\), variable ($), or statement end (;), nor whitespace.
_KEY = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
_PATH = re.compile(r"^/[A-Za-z0-9/_.-]*$")
_FILE = re.compile(r"^/[A-Za-z0-9/_.-]+$")
_METHODS = ("GET", "POST")


def generation_timeout_seconds(max_model_len: int) -> int:
    """proxy_read_timeout and proxy_send_timeout for a model with `max_model_len` tokens of context.

    A request that is not streamed sends nothing until its last token, so nginx must wait for the
    longest possible generation: every token of the context generated at the worst-case rate,
    plus time in the queue and for prefill:

        ceil(max_model_len / WORST_CASE_TOKENS_PER_SECOND) + QUEUE_AND_PREFILL_SECONDS

    32768 tokens: 3277 + 300 = 3577 s (about an hour). A stream resets the timer at every chunk.
    """
    if max_model_len < 1:
        raise ValueError("max_model_len must be at least 1")
    return math.ceil(max_model_len / WORST_CASE_TOKENS_PER_SECOND) + QUEUE_AND_PREFILL_SECONDS


def max_body_bytes(max_model_len: int) -> int:
    """client_max_body_size for prompts as long as the context:

        max_model_len * WORST_CASE_BYTES_PER_TOKEN + BODY_OVERHEAD_BYTES

    32768 tokens: 2 MiB + 1 MiB = 3 MiB. Bigger bodies get 413 without reaching the engine.
    """
    if max_model_len < 1:
        raise ValueError("max_model_len must be at least 1")
    return max_model_len * WORST_CASE_BYTES_PER_TOKEN + BODY_OVERHEAD_BYTES


@dataclass(frozen=True)
class GatewayTls:
    """TLS on the API port: PEM files the gateway reads at start (nginx reads them again on `nginx -s reload`)."""

    certificate_file: str  # the server certificate, then its intermediates (PEM)
    key_file: str  # its private key (PEM), from a Secret or a root-only directory, never in the conf


# Mozilla's "intermediate" configuration (ssl-config.mozilla.org, guidelines v5.7): TLS 1.2 and 1.3, forward-secret
# AEAD ciphers for 1.2 (1.3 suites are not configurable by ssl_ciphers). nginx 1.22 and 1.30 take both directives.
TLS_PROTOCOLS = "TLSv1.2 TLSv1.3"
TLS_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


@dataclass(frozen=True)
class GatewayConfig:
    listen_port: int  # the public API port, on 0.0.0.0
    engine_port: int  # the engine, which must listen on 127.0.0.1 only
    metrics_port: int  # GET /metrics only, on 0.0.0.0, for Prometheus; never behind a load balancer
    key_file: str  # absolute path of the file auth_map_entry() renders (from a Secret)
    read_timeout_seconds: int  # generation_timeout_seconds(max_model_len)
    max_body_bytes: int  # max_body_bytes(max_model_len)
    allowed_paths: tuple[tuple[str, str], ...] = DEFAULT_ROUTES  # (exact path, method), key required
    runtime_dir: str = "/tmp"  # writable: pid file and temp paths
    graceful_shutdown_seconds: int = 100  # SIGQUIT: how long requests in flight may still run
    worker_processes: int = 1  # one worker handles thousands of streams; the engine is the bottleneck
    worker_connections: int = 4096
    tls: Optional[GatewayTls] = None  # TLS only on listen_port
    plain_port: Optional[int] = None  # with tls: the same routes over plain HTTP, for in-cluster / VPC clients

    def problems(self) -> list[str]:
        found = []
        ports = {"listen_port": self.listen_port, "engine_port": self.engine_port, "metrics_port": self.metrics_port}
        if self.plain_port is not None:
            ports["plain_port"] = self.plain_port
            if self.tls is None:
                found.append("plain_port is only for a TLS gateway (without tls, listen_port is plain already)")
        for name, port in ports.items():
            if not 1024 < port < 65536:
                found.append(f"{name} {port} must be between 1025 and 65535 (nginx runs without root)")
        if len(set(ports.values())) < len(ports):
            found.append(f"{', '.join(ports)} must differ: {ports}")
        files = {"key_file": self.key_file, "runtime_dir": self.runtime_dir}
        if self.tls is not None:
            files |= {"tls.certificate_file": self.tls.certificate_file, "tls.key_file": self.tls.key_file}
        for name, value in files.items():
            if not _FILE.match(value) or "/../" in value + "/":
                found.append(f"{name} {value!r} must be an absolute path of letters, digits, '/', '_', '.', '-'")
        for name in (
            "read_timeout_seconds",
            "max_body_bytes",
            "graceful_shutdown_seconds",
            "worker_processes",
            "worker_connections",
        ):
            if getattr(self, name) < 1:
                found.append(f"{name} must be at least 1")
        paths = [path for path, _ in self.allowed_paths]
        if not paths or len(set(paths)) < len(paths):
            found.append(f"allowed_paths must be non-empty with each path once: {paths}")
        for path, method in self.allowed_paths:
            if not _PATH.match(path) or "/../" in path + "/" or "//" in path:
                found.append(f"allowed path {path!r} must be a plain absolute path")
            if path in (HEALTH_PATH, METRICS_PATH):
                found.append(f"{path} is served by the gateway itself, not an allowlisted path")
            if method not in _METHODS:
                found.append(f"method {method!r} of {path} must be one of {_METHODS}")
        return found


def auth_map_entry(api_key: str) -> str:
    """The content of key_file: one entry of the `map $http_authorization` block.

    Refuses keys with characters outside [A-Za-z0-9._~+/=-] or shorter than 16 / longer than 256,
    so nothing in the key can end the string or the statement, or start a variable or regex.

    How nginx compares it (ngx_http_map_find, a hash lookup): nginx lowercases the presented
    header, hashes all of it and compares it with the entries of that hash bucket byte by byte,
    stopping at the first difference. So:
    - the comparison is case-insensitive: "bearer ABC..." and "Bearer abc..." match the same
      entry. A 48-character key of letters and digits keeps about 248 bits (36 symbols a character).
      The engine behind keeps its own exact VLLM_API_KEY check on /v1, which refuses such a variant
      (tests/engine), so keep VLLM_API_KEY set on the engine;
    - the time to hash depends only on the length of what the client sent, not on the key, but the
      final comparison is not constant-time: it stops at the first differing byte, a difference of
      nanoseconds a byte, far below network jitter; nothing here proves it cannot be measured;
    - a wrong key costs one hash lookup, with no backend call, so guessing is cheap for the server
      and for the attacker alike: the key's length is the defence (no rate limiting here).
    """
    if not isinstance(api_key, str) or not _KEY.match(api_key):
        raise ValueError(
            "the API key must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = - "
            "(other characters could break the nginx configuration)"
        )
    return f'"Bearer {api_key}" 1;\n'


def nginx_argv(conf_path: str, binary: str = "nginx") -> list[str]:
    """How to start the gateway in the foreground with its errors on stderr from the first line."""
    return [binary, "-c", conf_path, "-e", "stderr"]


def _json_error(status: int, kind: str, message: str) -> str:
    body = json.dumps({"error": {"message": message, "type": kind, "code": status}}, separators=(",", ":"))
    return f"'{body}'"


_UNAUTHORIZED = _json_error(401, "authentication_error", "missing or invalid API key")
_NOT_FOUND = _json_error(404, "not_found_error", "not found")
_NOT_ALLOWED = _json_error(405, "invalid_request_error", "method not allowed")
_TOO_LARGE = _json_error(413, "invalid_request_error", "request body too large")
_UNAVAILABLE = _json_error(503, "service_unavailable", "engine unavailable")
_BAD_GATEWAY = _json_error(502, "service_unavailable", "engine unavailable")
_TIMEOUT = _json_error(504, "timeout_error", "engine did not answer in time")


def render_nginx_conf(config: GatewayConfig) -> str:
    """The complete nginx.conf (for `nginx -c`); raises ValueError listing every problem of config."""
    problems = config.problems()
    if problems:
        raise ValueError("gateway: " + "; ".join(problems))
    c = config
    run = c.runtime_dir.rstrip("/")
    timeout = f"{c.read_timeout_seconds}s"
    routes = "\n".join(_route(path, method) for path, method in c.allowed_paths)
    api_servers = _api_server(_listen(c.listen_port, c.tls), routes)
    if c.plain_port is not None:
        api_servers += "\n" + _api_server(
            "# Plain HTTP for clients inside the cluster or VPC only: no public load balancer targets this port.\n"
            f"        listen 0.0.0.0:{c.plain_port};",
            routes,
        )
    return f"""# Rendered by core/gateway.py: the only way into the engine. Do not edit; change the renderer.
worker_processes {c.worker_processes};
pid {run}/llm-gateway.pid;
error_log stderr warn;
daemon off;
# SIGQUIT: stop accepting, let requests in flight finish for at most this long.
worker_shutdown_timeout {c.graceful_shutdown_seconds}s;

events {{
    worker_connections {c.worker_connections};
}}

http {{
    log_format llm '$remote_addr [$time_iso8601] "$request_method $uri" $status $body_bytes_sent '
                   '$request_time $upstream_response_time';
    access_log /dev/stdout llm;
    client_body_temp_path {run}/llm-gateway-client-body;
    proxy_temp_path {run}/llm-gateway-proxy;
    fastcgi_temp_path {run}/llm-gateway-fastcgi;
    uwsgi_temp_path {run}/llm-gateway-uwsgi;
    scgi_temp_path {run}/llm-gateway-scgi;
    server_tokens off;
    default_type application/json;
    gzip off;  # never compress event streams (and nothing else needs it)
    client_max_body_size {c.max_body_bytes};
    client_body_buffer_size 1m;
    send_timeout {CLIENT_SEND_TIMEOUT_SECONDS}s;
    keepalive_timeout 75s;

    # 1 only for "Authorization: Bearer <the key>"; the entry lives in key_file (auth_map_entry()).
    map_hash_bucket_size 512;  # room for "Bearer " + a key of up to 256 characters
    map $http_authorization $llm_key_ok {{
        default 0;
        include {c.key_file};
    }}

    upstream llm_engine {{
        server 127.0.0.1:{c.engine_port};
        keepalive 32;
    }}

    # Streams pass through as they come: HTTP/1.1 upstream, no buffering, no compression.
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_buffering off;
    proxy_cache off;
    proxy_connect_timeout 5s;
    proxy_read_timeout {timeout};
    proxy_send_timeout {timeout};

{api_servers}

    # Prometheus only: GET /metrics, on a port no load balancer exposes.
    server {{
        listen 0.0.0.0:{c.metrics_port};
        location = {METRICS_PATH} {{
            if ($request_method != GET) {{
                return 405 {_NOT_ALLOWED};
            }}
            proxy_pass http://llm_engine{METRICS_PATH};
            proxy_set_header Authorization "";
            proxy_read_timeout 30s;
            error_page 502 504 =503 @unavailable;
        }}
        location / {{
            return 404 {_NOT_FOUND};
        }}
        location @unavailable {{
            return 503 {_UNAVAILABLE};
        }}
    }}
}}
"""


def _listen(port: int, tls: Optional[GatewayTls]) -> str:
    """The API port's listen directive, with TLS when configured (a plain request there gets nginx's 400)."""
    if tls is None:
        return f"listen 0.0.0.0:{port} default_server;"
    return "\n        ".join(
        [
            f"listen 0.0.0.0:{port} ssl default_server;",
            f"ssl_certificate {tls.certificate_file};",
            f"ssl_certificate_key {tls.key_file};",
            f"ssl_protocols {TLS_PROTOCOLS};",
            f"ssl_ciphers {TLS_CIPHERS};",
            "ssl_prefer_server_ciphers off;",
            "ssl_session_timeout 1d;",
            "ssl_session_cache shared:llm_tls:10m;",
            "ssl_session_tickets off;",
        ]
    )


def _api_server(listen: str, routes: str) -> str:
    return f"""    server {{
        {listen}
        error_page 413 @too_large;
        error_page 502 @bad_gateway;
        error_page 504 @timeout;

{routes}

        location = {HEALTH_PATH} {{
            if ($request_method != GET) {{
                return 405 {_NOT_ALLOWED};
            }}
            proxy_pass http://llm_engine{HEALTH_PATH};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Authorization "";
            proxy_intercept_errors on;
            error_page 301 302 400 401 403 404 405 500 502 503 504 =503 @unavailable;
        }}

        location / {{
            return 404 {_NOT_FOUND};
        }}

        location @unavailable {{
            return 503 {_UNAVAILABLE};
        }}
        location @too_large {{
            return 413 {_TOO_LARGE};
        }}
        location @bad_gateway {{
            return 502 {_BAD_GATEWAY};
        }}
        location @timeout {{
            return 504 {_TIMEOUT};
        }}
    }}"""


def _route(path: str, method: str) -> str:
    # The key check comes first (rewrite phase), so a keyless caller learns nothing about methods.
    # proxy_pass names the path itself: the engine gets exactly the allowlisted path (plus the
    # query string), whatever spelling of it nginx normalised.
    return f"""        location = {path} {{
            if ($llm_key_ok != 1) {{
                add_header WWW-Authenticate 'Bearer' always;
                return 401 {_UNAUTHORIZED};
            }}
            if ($request_method != {method}) {{
                return 405 {_NOT_ALLOWED};
            }}
            proxy_pass http://llm_engine{path};
        }}"""


# The ports every target uses around the gateway: the engine on loopback behind it, and the metrics listener.
# The public API port is access.apiPort (8000 by default), which config keeps apart from these two. Both lie
# outside the ranges others take on the same host or pod: Ray's worker ports (10002-19999 by default, `ray start
# --min-worker-port/--max-worker-port`) on a LeaderWorkerSet leader, Linux's ephemeral ports (32768-60999),
# and 9400, where NVIDIA's DCGM exporter listens (prometheus/prometheus wiki "Default port allocations").
ENGINE_LOOPBACK_PORT = 8001
METRICS_PORT = 8002
