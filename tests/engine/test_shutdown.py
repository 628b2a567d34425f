"""A pod's shutdown during streams: why the engine needs --shutdown-timeout, and that the pod as the program
builds it lets every stream in flight finish.

Each test starts its own engine and gateway (the session ones keep serving the other tests). The engines here
allow 4096 tokens (the tiny model's maximum) so that a stream lasts seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import substitutions as subs
from conftest import exported_stacks, gateway_config, group_alive, start_engine, start_gateway, start_stack, stop
from test_gateway_live import LONG as STREAM
from test_gateway_live import _stream, generated

LONG = {**STREAM, "max_tokens": 4000}


def wait_running(engine_url: str, count: int, seconds: float = 60) -> None:
    """Until the engine's own metrics show `count` requests in it, running or queued: the streams are in flight,
    not done yet (the tiny model writes thousands of tokens a second on an idle machine, so a fixed sleep could miss
    them; on a loaded one the scheduler may hold some back a step, which a count of running ones alone missed)."""
    import re
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"{engine_url}/metrics", timeout=5).read().decode()
        found = re.findall(r"^vllm:num_requests_(?:running|waiting)\{[^}]*\} (\S+)$", text, re.M)
        if sum(float(v) for v in found) >= count:
            return
        time.sleep(0.02)
    raise TimeoutError(f"{count} requests were never in the engine at once")


def streaming(url: str, body: dict = LONG, count: int = 1, engine_url: str | None = None):
    """Start `count` streams in threads; returns (threads, results) once they run (or shortly after)."""
    results: list[dict] = [{} for _ in range(count)]

    def run(result):
        result["chunks"], result["done"] = _stream(f"{url}/v1/completions", body)
        result["ended"] = time.monotonic()

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in results]
    for thread in threads:
        thread.start()
    if engine_url:
        wait_running(engine_url, count)
    else:
        time.sleep(0.5)
    return threads, results


def group_gone(pgid: int, seconds: float = 15) -> bool:
    """Whether the engine's EngineCore and workers are gone too, soon after the API server."""
    deadline = time.monotonic() + seconds
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not group_alive(pgid)


def finish_reasons(result: dict) -> list[str]:
    return [
        c["choices"][0]["finish_reason"]
        for _, c in result["chunks"]
        if c.get("choices") and c["choices"][0]["finish_reason"]
    ]


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def until(condition, seconds: float) -> bool:
    """Whether `condition()` becomes true within `seconds` (polled every 0.1 s)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def default_shutdown(model_dir, workdir):
    """vLLM without --shutdown-timeout (its default, 0: "abort"), behind a gateway that drains for 10 s."""
    engine = start_engine(model_dir, workdir / "abort-engine.log", extra=("--max-model-len", "4096"))
    assert "--shutdown-timeout" not in engine.argv
    gateway = start_gateway(workdir, gateway_config(workdir, engine.port, name="abort", grace_seconds=10), name="abort")
    yield engine, gateway
    stop(gateway.process, signal.SIGKILL, 10)
    stop(engine.process, signal.SIGKILL, 10)


def test_vllm_sigterm_by_default_aborts_the_streams_in_flight(default_shutdown, record_property):
    """Measured, not wished: vLLM 0.32.0 with the default --shutdown-timeout 0 ("abort") stops
    generating at once on SIGTERM and every stream in flight is cut. With one stream we saw a last
    event with finish_reason "abort" and [DONE], and an exit in about 0.5 s; with 8 streams, no
    final event at all, the connections held open until nginx's worker_shutdown_timeout closed
    them (10 s here; 60 s in another run), then exit 0. nginx's SIGQUIT drain cannot save a stream the engine has
    dropped; only the engine's --shutdown-timeout can (next test)."""
    engine, gateway = default_shutdown
    # 8 streams of 4000 tokens: seconds of generation even for the tiny model (thousands of tokens/s).
    threads, results = streaming(gateway.url, count=8, engine_url=engine.url)
    signalled = time.monotonic()
    gateway.process.send_signal(signal.SIGQUIT)
    engine.process.send_signal(signal.SIGTERM)
    code = engine.process.wait(90)
    exited = time.monotonic() - signalled
    for thread in threads:
        thread.join(60)
    received = [sum(1 for _, c in r["chunks"] if c.get("choices")) for r in results]
    observed = {
        "exit_code": code,
        "exit_seconds": round(exited, 2),
        "done": [r["done"] for r in results],
        "events_received": received,
        "of": 4000,
        "engine_processes_gone": group_gone(engine.process.pid),
        "finish_reasons": sorted({f for r in results for f in finish_reasons(r)}),
    }
    record_property("vllm_sigterm", observed)
    print("vllm SIGTERM observed:", observed)
    assert all(
        n < 4000 and generated(r["chunks"]) < 4000 for n, r in zip(received, results, strict=False)
    )  # all cut short
    # It exits 0, but only once the connections close: with several streams they got no final
    # event and stayed open until nginx's worker_shutdown_timeout closed them.
    assert code == 0 and exited < gateway.config.graceful_shutdown_seconds + 30


# --- Shutdown as the pod does it -------------------------------------------------------------------------


def pod_stack(with_shutdown_timeout: bool) -> str:
    """The first Kubernetes example stack whose engine argv has (or has not) --shutdown-timeout."""
    for name, stack in sorted(exported_stacks().items()):
        argv = stack["engine"]["args"] or stack["engine"]["command"]
        if stack["kind"] == "pod" and ("--shutdown-timeout" in argv) is with_shutdown_timeout:
            return name
    raise LookupError(f"no pod stack {'with' if with_shutdown_timeout else 'without'} --shutdown-timeout")


@pytest.mark.parametrize(
    "variant", ["vLLM >= 0.18: --shutdown-timeout", "vLLM 0.11.0 (the mainland default): no --shutdown-timeout"]
)
def test_a_pod_shutdown_lets_streams_in_flight_finish(variant, model_dir, workdir, record_property):
    """A stack's pod, stopped as the kubelet stops it: both containers' own preStop hooks at once (the
    gateway: the drain, `nginx -s quit`, wait for nginx to exit; the engine: a slightly longer drain, then wait
    while its metrics show requests in flight), then SIGTERM to the engine once its hook returns. 8 streams of
    3000 tokens in flight: all finish whole, within the pod's grace period, for a stack whose argv has the
    program's --shutdown-timeout and for one whose has none (a mainland stack: vLLM 0.11.0 has no such option and
    aborts everything on SIGTERM, the preStop wait is what saves the streams there; run here on 0.32.0 without the
    option, whose default is the same abort)."""
    name = pod_stack(with_shutdown_timeout="0.18" in variant)
    export = exported_stacks()[name]
    stack = start_stack(export, model_dir, workdir, f"{name}-shutdown", max_model_len=4096)
    try:
        results = [{} for _ in range(8)]

        def run(result):
            body = {
                "model": stack.served_name,
                "prompt": "Go",
                "max_tokens": 3000,
                "ignore_eos": True,
                "stream_options": {"include_usage": True},
            }
            result["chunks"], result["done"] = _stream(f"{stack.gateway.url}/v1/completions", body, key=stack.key)

        threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in results]
        for thread in threads:
            thread.start()
        wait_running(stack.engine.url, len(threads))
        signalled = time.monotonic()
        gateway_hook = export["gateway"]["lifecycle"]["preStop"]["exec"]["command"]
        script = subs.gateway_prestop(gateway_hook[2], str(stack.gateway.conf_path), stack.gateway.config.runtime_dir)
        path = {**os.environ, "PATH": f"/usr/sbin:{os.environ['PATH']}"}
        gateway_prestop = subprocess.Popen(["sh", "-c", script], env=path)
        engine_hook = subs.engine_prestop(
            export["engine"]["lifecycle"]["preStop"]["exec"]["command"], stack.engine.port
        )
        engine_hook[0] = sys.executable
        engine_prestop = subprocess.Popen(engine_hook)
        # nothing new once nginx quits; polled, as `sh` and `nginx -s quit` take a moment on a loaded machine
        assert until(lambda: refuses_connections(stack.gateway.config.listen_port), seconds=15)
        engine_prestop.wait(export["grace_seconds"])
        busy_after_hook = sum(1 for r in results if "chunks" not in r)
        stack.engine.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(export["grace_seconds"])
        gateway_code = gateway_prestop.wait(export["grace_seconds"])
        engine_code = stack.engine.process.wait(export["grace_seconds"])
        elapsed = time.monotonic() - signalled
        observed = {
            "stack": name,
            "variant": variant,
            "generated": [generated(r["chunks"]) for r in results],
            "done": [r["done"] for r in results],
            "streams_open_at_sigterm": busy_after_hook,
            "seconds": round(elapsed, 1),
            "gateway_prestop_exit": gateway_code,
            "engine_exit": engine_code,
        }
        record_property("pod_shutdown", observed)
        print("pod shutdown observed:", observed)
        assert all(r["done"] and generated(r["chunks"]) == 3000 for r in results), observed
        assert gateway_code == 0 and stack.gateway.process.wait(10) == 0
        assert engine_code == 0 and elapsed < export["grace_seconds"]
        assert group_gone(stack.engine.process.pid)
    finally:
        stop(stack.gateway.process, signal.SIGKILL, 10)
        stop(stack.engine.process, signal.SIGKILL, 10)
