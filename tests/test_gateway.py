"""The gateway's nginx.conf renderer (core/gateway.py): fast, offline, no engine.

`nginx -t` needs Debian's nginx (scripts/test.sh installs it when missing); the real requests
through nginx in front of a real vLLM are in tests/engine (./scripts/test.sh --engine).
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from core.gateway import (
    DEFAULT_ROUTES,
    GATEWAY_IMAGE,
    GatewayConfig,
    auth_map_entry,
    generation_timeout_seconds,
    max_body_bytes,
    nginx_argv,
    render_nginx_conf,
)

KEY = "k3y-Of.48_characters~abcdefghijklmnopqrstuvwxyz+/="
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(not os.path.exists(NGINX), reason="Debian nginx is not installed")


def config(tmp_path, **overrides):
    values = dict(
        listen_port=8000,
        engine_port=8001,
        metrics_port=9090,
        key_file=str(tmp_path / "key.map"),
        read_timeout_seconds=generation_timeout_seconds(32768),
        max_body_bytes=max_body_bytes(32768),
        runtime_dir=str(tmp_path / "run"),
    )
    values.update(overrides)
    return GatewayConfig(**values)


def write(tmp_path, cfg, key=KEY):
    (tmp_path / "run").mkdir(exist_ok=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(cfg))
    (tmp_path / "key.map").write_text(auth_map_entry(key))
    return conf


def nginx_test(conf, as_nobody=False):
    """`nginx -t` on conf; as_nobody (when root): as uid 65534, with stdout/stderr it may open, as
    a container runtime gives them to the container's user."""
    argv = [*nginx_argv(str(conf), NGINX)[:3], "-t", "-e", "stderr"]
    read, write_end = os.pipe()
    if as_nobody and os.geteuid() == 0:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        os.fchown(write_end, 65534, 65534)
    try:
        code = subprocess.run(argv, stdout=write_end, stderr=write_end, timeout=30).returncode
    finally:
        os.close(write_end)
    with os.fdopen(read) as output:
        return subprocess.CompletedProcess(argv, code, "", output.read())


@needs_nginx
def test_nginx_accepts_the_rendered_config(tmp_path):
    result = nginx_test(write(tmp_path, config(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@needs_nginx
def test_nginx_accepts_it_as_a_user_without_root():
    directory = Path(tempfile.mkdtemp(prefix="llm-gateway-test-"))  # pytest's tmp_path is root-only
    try:
        conf = write(directory, config(directory))
        os.chmod(directory, 0o755)
        os.chmod(directory / "run", 0o777)
        result = nginx_test(conf, as_nobody=True)
        assert result.returncode == 0, result.stderr
    finally:
        shutil.rmtree(directory)


@needs_nginx
@pytest.mark.parametrize("key", ["k" * 16, "K" * 256])
def test_nginx_accepts_keys_of_every_allowed_length(tmp_path, key):
    assert nginx_test(write(tmp_path, config(tmp_path), key)).returncode == 0


@needs_nginx
def test_nginx_accepts_a_custom_allowlist(tmp_path):
    cfg = config(tmp_path, allowed_paths=(*DEFAULT_ROUTES, ("/v1/embeddings", "POST")))
    assert nginx_test(write(tmp_path, cfg)).returncode == 0


def test_the_key_is_only_in_the_key_file(tmp_path):
    text = render_nginx_conf(config(tmp_path))
    assert KEY not in text and "Bearer k3y" not in text
    assert f"include {tmp_path / 'key.map'};" in text
    assert re.search(r"map \$http_authorization \$llm_key_ok \{\s*default 0;\s*include ", text)
    assert auth_map_entry(KEY) == f'"Bearer {KEY}" 1;\n'
    assert KEY not in " ".join(nginx_argv("/etc/llm-gateway/nginx.conf"))


@pytest.mark.parametrize(
    "bad",
    [
        'a"b' + "x" * 20,
        "a;b" + "x" * 20,
        "a b" + "x" * 20,
        "a$b" + "x" * 20,
        "a{b}" + "x" * 20,
        "a\nb" + "x" * 20,
        "a\\b" + "x" * 20,
        "a'b" + "x" * 20,
        "ключ" + "x" * 20,
        "#comment" + "x" * 20,
        "short",
        "x" * 257,
        "",
    ],
)
def test_keys_that_could_break_the_config_are_refused(bad):
    with pytest.raises(ValueError, match="API key"):
        auth_map_entry(bad)


def _locations(text):
    """{location: body} for every `location` block of the rendered conf."""
    return {m.group(1).strip(): m.group(2) for m in re.finditer(r"location ([^{]+)\{(.*?)\n        \}", text, re.S)}


def test_every_allowlisted_path_checks_the_key_before_the_engine(tmp_path):
    text = render_nginx_conf(config(tmp_path))
    locations = _locations(text)
    proxied = {loc for loc, body in locations.items() if "proxy_pass" in body}
    assert proxied == {f"= {p}" for p, _ in DEFAULT_ROUTES} | {"= /health", "= /metrics"}
    for path, method in DEFAULT_ROUTES:
        body = locations[f"= {path}"]
        assert body.index("$llm_key_ok != 1") < body.index(f"$request_method != {method}") < body.index("proxy_pass")
        assert f"proxy_pass http://llm_engine{path};" in body
    assert "$llm_key_ok" not in locations["= /health"] and 'Authorization ""' in locations["= /health"]
    assert "return 404" in locations["/"]


def test_only_the_metrics_listener_serves_metrics(tmp_path):
    text = render_nginx_conf(config(tmp_path))
    api, metrics = text.split("# Prometheus only")
    assert "listen 0.0.0.0:8000 default_server;" in api and "/metrics" not in api
    assert "listen 0.0.0.0:9090;" in metrics and metrics.count("proxy_pass") == 1
    assert "server 127.0.0.1:8001;" in text


def test_streams_are_not_buffered_or_compressed_and_long_generations_not_cut(tmp_path):
    text = render_nginx_conf(config(tmp_path))
    for directive in (
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "gzip off;",
        "proxy_read_timeout 3577s;",
        "proxy_send_timeout 3577s;",
        f"client_max_body_size {3 * 1024 * 1024};",
    ):
        assert directive in text, directive


def test_timeouts_and_body_size_follow_the_context_length():
    assert generation_timeout_seconds(32768) == 3277 + 300
    assert generation_timeout_seconds(131072) == 13108 + 300
    assert max_body_bytes(32768) == 3 * 1024 * 1024
    assert max_body_bytes(1024) == 64 * 1024 + 1024 * 1024
    with pytest.raises(ValueError):
        generation_timeout_seconds(0)


def test_runs_without_root_on_a_read_only_root_filesystem(tmp_path):
    text = render_nginx_conf(config(tmp_path, runtime_dir="/tmp"))
    assert not re.search(r"^\s*user\s", text, re.M)
    assert "daemon off;" in text and "error_log stderr" in text and "access_log /dev/stdout" in text
    assert "worker_shutdown_timeout 100s;" in text
    written = re.findall(r"^\s*(?:pid|\w+_temp_path)\s+(\S+);", text, re.M)
    assert len(written) == 6 and all(p.startswith("/tmp/llm-gateway") for p in written)


@pytest.mark.parametrize(
    "overrides,problem",
    [
        (dict(engine_port=8000), "must differ"),
        (dict(listen_port=80), "between 1025 and 65535"),
        (dict(key_file="key.map"), "absolute path"),
        (dict(key_file="/etc/k;ey"), "absolute path"),
        (dict(allowed_paths=(("/v1/../invocations", "POST"),)), "plain absolute path"),
        (dict(allowed_paths=(("/v1/models", "DELETE"),)), "must be one of"),
        (dict(allowed_paths=(("/health", "GET"),)), "served by the gateway"),
        (dict(allowed_paths=()), "non-empty"),
        (dict(read_timeout_seconds=0), "at least 1"),
    ],
)
def test_bad_settings_are_refused(tmp_path, overrides, problem):
    with pytest.raises(ValueError, match=problem):
        render_nginx_conf(config(tmp_path, **overrides))


def test_the_gateway_image_is_pinned_by_tag_and_digest():
    name, digest = GATEWAY_IMAGE.split("@")
    assert name.startswith("docker.io/library/nginx:1.") and name.endswith("-alpine")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
