"""The real vLLM behind the real nginx: what is refused, what is allowed, streams, metrics, clients."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import gateway_check as check
import pytest
import substitutions as subs
import tiny_model
from conftest import ROOT, gateway_config, read_only_root, start_gateway, stop

from core.gateway import DEFAULT_ROUTES, render_nginx_conf

KEY = subs.API_KEY
ALLOWED = set(DEFAULT_ROUTES)
CHAT = {"model": subs.SERVED_NAME, "messages": [{"role": "user", "content": "Who are you?"}], "max_tokens": 32}
REFUSED_BY_NAME = [
    "/invocations",
    "/tokenize",
    "/detokenize",
    "/pooling",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/v2/models",
    "/ping",
    "/version",
]


def test_the_engine_alone_is_open_so_a_missing_gateway_would_be_caught(engine):
    """The bypass itself (vllm-project/vllm#58144), on the pinned version: without the gateway the
    suite's probe finds holes. Every gateway test below would fail the same way if nginx were skipped."""
    status, body, _ = check.request(
        "POST", f"{engine.url}/invocations", None, {"model": subs.SERVED_NAME, "prompt": "hi", "max_tokens": 4}
    )
    assert status == 200 and json.loads(body)["choices"][0]["text"]  # a completion without any key
    for path in ("/tokenize", "/ping", "/version", "/metrics"):
        method = "POST" if path == "/tokenize" else "GET"
        status, _, _ = check.request(
            method, engine.url + path, None, {"model": subs.SERVED_NAME, "prompt": "hi"} if method == "POST" else None
        )
        assert status == 200, path
    assert check.request("GET", f"{engine.url}/v1/models")[0] == 401  # only the /v1 prefix is guarded
    holes = check.probe(engine.url, KEY, check.engine_routes(engine.url), ALLOWED, subs.SERVED_NAME)
    assert any(h.startswith("POST /invocations (no key): 200") for h in holes), holes[:5]


def test_every_engine_route_is_refused_through_the_gateway(engine, gateway):
    routes = check.engine_routes(engine.url)
    assert {"/invocations", "/tokenize", "/ping", "/version", "/metrics"} <= set(
        routes
    )  # /pooling: pooling models only
    assert check.probe(gateway.url, KEY, routes, ALLOWED, subs.SERVED_NAME) == []


@pytest.mark.parametrize("path", REFUSED_BY_NAME)
@pytest.mark.parametrize("key", [None, "wrong-key-0123456789", KEY])
def test_named_engine_paths_get_the_gateways_404(gateway, path, key):
    for method in ("GET", "POST"):
        status, body, _ = check.request(method, gateway.url + path, key, {"model": subs.SERVED_NAME, "prompt": "x"})
        assert status == 404 and check.from_gateway(status, body), (method, path, status, body)


@pytest.mark.parametrize("path,method", sorted(ALLOWED))
def test_the_allowlist_needs_the_key(gateway, path, method):
    body = CHAT if path.endswith("chat/completions") else {"model": subs.SERVED_NAME, "prompt": "hi", "max_tokens": 4}
    body = body if method == "POST" else None
    for key in (None, "wrong-key-0123456789", KEY[:-1], KEY + "x"):
        status, answer, headers = check.request(method, gateway.url + path, key, body)
        assert status == 401 and check.from_gateway(status, answer), (key, status, answer)
        assert headers.get("WWW-Authenticate") == "Bearer"
    status, answer, _ = check.request(method, gateway.url + path, KEY, body)
    assert status == 200, answer
    other = "GET" if method == "POST" else "POST"
    assert check.request(other, gateway.url + path, KEY, body)[0] == 405


def test_a_key_in_another_case_passes_nginx_but_not_the_engine(gateway):
    """nginx's map lowercases before its hash lookup (core.gateway.auth_map_entry says so), so the
    gateway lets a key that differs only in case through; the engine's own VLLM_API_KEY check,
    kept behind the gateway, is exact and refuses it. Keep VLLM_API_KEY set on the engine."""
    for path, method, body in (
        ("/v1/models", "GET", None),
        ("/v1/completions", "POST", {"model": subs.SERVED_NAME, "prompt": "x", "max_tokens": 1}),
    ):
        status, answer, _ = check.request(method, gateway.url + path, KEY.swapcase(), body)
        assert status == 401 and not check.from_gateway(status, answer), (path, answer)


def test_models_chat_and_completions_answer_through_the_gateway(gateway):
    _, body, _ = check.request("GET", f"{gateway.url}/v1/models", KEY)
    assert [m["id"] for m in json.loads(body)["data"]] == [subs.SERVED_NAME]
    _, body, _ = check.request(
        "POST",
        f"{gateway.url}/v1/completions",
        KEY,
        {"model": subs.SERVED_NAME, "prompt": "Who", "max_tokens": 16, "temperature": 0},
    )
    assert json.loads(body)["choices"][0]["text"] == "Let me think</think>Hello world"


def test_the_reasoning_parser_splits_reasoning_from_content(gateway):
    """The tiny model is made to say `Let me think</think>Hello world` after the template's
    `<think>`; --reasoning-parser deepseek_r1 (from the catalog) must split it. vLLM 0.32 names the
    field `reasoning` (it no longer returns `reasoning_content`)."""
    status, body, _ = check.request("POST", f"{gateway.url}/v1/chat/completions", KEY, {**CHAT, "temperature": 0})
    message = json.loads(body)["choices"][0]["message"]
    assert status == 200
    assert message["reasoning"] == tiny_model.REASONING and message["content"] == tiny_model.CONTENT
    assert "reasoning_content" not in message


def _stream(url: str, body: dict, key: str = KEY, timeout: float = 300) -> tuple[list[tuple[float, dict]], bool]:
    """[(arrival time, chunk)], and whether the stream ended with [DONE]. A usage chunk (asked with
    stream_options.include_usage) is the last chunk, with empty choices."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection.request(
        "POST",
        parts.path,
        json.dumps({**body, "stream": True}),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    chunks, done = [], False
    try:
        for raw in response:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                chunks.append((time.monotonic(), json.loads(line[6:])))
    except (http.client.IncompleteRead, ConnectionError, OSError):
        pass
    connection.close()
    return chunks, done


LONG = {
    "model": subs.SERVED_NAME,
    "prompt": "Go",
    "max_tokens": 600,
    "ignore_eos": True,
    "temperature": 0,
    "stream_options": {"include_usage": True},
}


def generated(chunks: list[tuple[float, dict]]) -> int:
    """Tokens generated, from the usage chunk at the end of the stream."""
    usage = [c["usage"] for _, c in chunks if c.get("usage")]
    return usage[-1]["completion_tokens"] if usage else 0


def text_of(chunks: list[tuple[float, dict]]) -> str:
    return "".join(c["choices"][0]["text"] for _, c in chunks if c.get("choices"))


def _spread(base_url: str) -> tuple[float, float]:
    """(first, last) arrival of a 900-token stream's chunks, in seconds from the request."""
    start = time.monotonic()
    chunks, done = _stream(f"{base_url}/v1/completions", {**LONG, "max_tokens": 900})
    assert done and generated(chunks) == 900
    assert len(chunks) >= 450  # vLLM may put two tokens in one event when it runs ahead
    assert text_of(chunks).startswith("Let me think</think>Hello world")
    return round(chunks[0][0] - start, 3), round(chunks[-1][0] - start, 3)


def test_streams_pass_through_unbuffered(gateway, engine):
    """Every token is its own SSE event and the first arrives long before the last. The tiny model makes ~500
    tokens/s here, so a stall of the shared 2-core machine can bunch a stream at its source (seen while other
    suites ran beside this one): a bunched stream through the gateway counts against it only when the engine's
    own stream, read right after, is spread out."""
    stalled = []
    for _ in range(5):
        first, last = _spread(gateway.url)
        if first < 0.5 * last:
            return
        direct = _spread(engine.url)
        if direct[0] < 0.5 * direct[1]:
            pytest.fail(f"the gateway bunched a stream the engine spreads: gateway {(first, last)}, engine {direct}")
        stalled.append(((first, last), direct))
    pytest.skip(f"every stream bunched at its source, nothing measured: (gateway, engine) = {stalled}")


def test_streamed_chat_carries_reasoning_then_content(gateway):
    chunks, done = _stream(f"{gateway.url}/v1/chat/completions", {**CHAT, "temperature": 0})
    deltas = [c["choices"][0]["delta"] for _, c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert done and reasoning == tiny_model.REASONING and content == tiny_model.CONTENT


def test_health_needs_no_key_and_leaks_nothing(gateway):
    status, body, headers = check.request("GET", f"{gateway.url}/health")
    assert status == 200 and body == b""
    assert "uvicorn" not in json.dumps(headers).lower()
    assert check.request("POST", f"{gateway.url}/health")[0] == 405


def test_the_metrics_listener_serves_the_autoscaling_metrics(gateway):
    check.request(
        "POST", f"{gateway.url}/v1/completions", KEY, {"model": subs.SERVED_NAME, "prompt": "x", "max_tokens": 2}
    )
    status, body, _ = check.request("GET", f"{gateway.metrics_url}/metrics")
    text = body.decode()
    assert status == 200
    for name in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"):
        assert re.search(rf"^{re.escape(name)}\{{", text, re.M), name
    assert check.request("GET", f"{gateway.url}/metrics", KEY)[0] == 404
    for path in ("/health", "/v1/models", "/invocations"):
        assert check.request("GET", gateway.metrics_url + path, KEY)[0] == 404
    assert check.request("POST", f"{gateway.metrics_url}/metrics")[0] == 405


def check_readiness_script(port: int, key: str, tmp_path: Path, tls: bool = False) -> None:
    """components/scripts/ready.sh's own lines from the /health wait on (a copy: the host-side steps before it,
    secret.env and systemd, have no place here), with API_PORT the gateway's: they pass with the key and fail
    with a wrong one. tls: as its TLS branch leaves them (https, the loopback check without name verification)."""
    ready = (ROOT / "components/scripts/ready.sh").read_text()
    tail = ready[ready.index('base="$scheme://127.0.0.1:$API_PORT"') :]
    script = tmp_path / "ready-tail.sh"
    scheme = "scheme=https\ntls_check=(--insecure)\n" if tls else "scheme=http\ntls_check=()\n"
    script.write_text(
        "set -euo pipefail\ndeadline=$(($(date +%s) + TIMEOUT_SECONDS))\n"
        'fail() { echo "not ready: $*" >&2; exit 1; }\n'
        'past_deadline() { [ "$(date +%s)" -ge "$deadline" ]; }\n' + scheme + tail
    )
    env = {**os.environ, "API_PORT": str(port), "API_KEY_VALUE": key, "TIMEOUT_SECONDS": "60"}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ready: the API is healthy and requires the API key" in result.stdout
    wrong = subprocess.run(
        ["bash", str(script)],
        env={**env, "API_KEY_VALUE": "wrong-key-0123456789"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 1 and "refused the configured API key" in wrong.stderr


def test_the_readiness_checks_pass_against_gateway_and_engine(gateway, tmp_path):
    check_readiness_script(gateway.config.listen_port, KEY, tmp_path)


def test_vllm_bench_serve_with_the_projects_argv_through_the_gateway(gateway, engine, tmp_path):
    from components.kubernetes.benchmark_job import BenchmarkArgs, bench_argv
    from core.config.benchmark import BenchmarkConfig

    config = BenchmarkConfig(
        enabled=True, dataset="random", prompts=4, request_rate="inf", concurrency=2, input_len=16, output_len=8
    )
    args = BenchmarkArgs(
        namespace="llm",
        image="unused",
        base_url="unused",
        served_model_name=subs.SERVED_NAME,
        model_path=str(engine.model_dir),
        model_volume={},
        model_mount_path="/models",
        api_key_secret="s",
        api_key_secret_key="k",
        config=config,
        pip_index_url="https://p/",
    )
    results = tmp_path / "results"
    argv = [gateway.url if a == "$(BASE_URL)" else a for a in bench_argv(args, str(results), None)]
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, **{k: v for k, v in subs.ENV.items() if k != "VLLM_API_KEY"}, "OPENAI_API_KEY": KEY}
    result = subprocess.run(
        [str(venv_bin / "vllm"), *argv[1:]], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = list(results.glob("*.json"))
    assert len(files) == 1, list(results.iterdir()) if results.exists() else "no result dir"
    data = json.loads(files[0].read_text())
    assert data["completed"] == 4 and data["num_prompts"] == 4 and data["label"] == "llm-benchmark"


def test_the_stack_outputs_curl_and_openai_snippets_work(gateway, tmp_path):
    from stacks.client import curl_command, openai_snippet

    base = f"{gateway.url}/v1"
    curl = subprocess.run(
        ["bash", "-c", subs.client_strings(curl_command(base, subs.SERVED_NAME))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert curl.returncode == 0 and json.loads(curl.stdout)["choices"][0]["message"]["content"] == tiny_model.CONTENT
    script = tmp_path / "snippet.py"
    script.write_text(subs.client_strings(openai_snippet(base, subs.SERVED_NAME)))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == tiny_model.CONTENT


def test_an_unauthenticated_location_is_flagged(engine, gateway, workdir):
    """Deliberate breakage: a conf with one extra location that skips the key check. The static
    audit and the live probe both catch it; the rendered conf passes both."""
    assert check.audit_conf(gateway.conf_path.read_text()) == []
    config = gateway_config(workdir, engine.port, name="broken")
    text = render_nginx_conf(config)
    hole = "        location = /tokenize {\n            proxy_pass http://llm_engine/tokenize;\n        }\n\n"
    broken = text.replace("        location / {", hole + "        location / {", 1)
    assert check.audit_conf(broken) == ["location = /tokenize proxies to the engine without the key check"]
    broken_gateway = start_gateway(workdir, config, broken, name="broken")
    try:
        holes = check.probe(broken_gateway.url, KEY, {"/tokenize": {"POST"}}, ALLOWED, subs.SERVED_NAME)
    finally:
        stop(broken_gateway.process, 3, 10)
    assert any(h.startswith("POST /tokenize (no key): 200") for h in holes), holes


def test_the_gateway_runs_as_nobody(gateway):
    if not gateway.as_nobody:
        pytest.skip("the suite is not running as root, so nginx already runs without it")
    out = subprocess.run(
        ["ps", "-o", "user=", "--ppid", str(gateway.process.pid), "-p", str(gateway.process.pid)],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out and set(out) == {"nobody"}


def test_the_gateway_serves_from_a_read_only_root_filesystem(engine, workdir):
    if os.geteuid() != 0:
        pytest.skip("a mount namespace needs root")
    config = gateway_config(workdir, engine.port, name="readonly")
    gateway = start_gateway(workdir, config, name="readonly", prefix=tuple(read_only_root(config.runtime_dir)))
    try:
        status, body, _ = check.request("GET", f"{gateway.url}/v1/models", KEY)
        assert status == 200, body
        chunks, done = _stream(f"{gateway.url}/v1/completions", {**LONG, "max_tokens": 50})
        assert done and generated(chunks) == 50
    finally:
        stop(gateway.process, 3, 10)
    assert "Read-only file system" not in gateway.log.read_text()


def test_event_streams_are_not_compressed(gateway):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", gateway.config.listen_port, timeout=60)
    connection.request(
        "POST",
        "/v1/completions",
        json.dumps({**LONG, "max_tokens": 20, "stream": True}),
        {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "Accept-Encoding": "gzip, deflate, br"},
    )
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")
    assert response.getheader("Content-Encoding") is None and body.startswith(b"data: ")
