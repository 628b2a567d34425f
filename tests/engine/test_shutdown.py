"""A pod's shutdown during a stream: nginx gets SIGQUIT (the image's STOPSIGNAL), the engine SIGTERM.

Each test starts its own engine and gateway (the session ones keep serving the other tests). The
engines here allow 4096 tokens (the tiny model's maximum) so that a stream lasts seconds.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest
from conftest import gateway_config, group_alive, start_engine, start_gateway, stop
from test_gateway_live import LONG as STREAM
from test_gateway_live import _stream, generated

LONG = {**STREAM, "max_tokens": 4000}


def streaming(url: str, body: dict = LONG, count: int = 1):
    """Start `count` streams in threads; returns (threads, results) shortly after."""
    results: list[dict] = [{} for _ in range(count)]

    def run(result):
        result["chunks"], result["done"] = _stream(f"{url}/v1/completions", body)
        result["ended"] = time.monotonic()

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in results]
    for thread in threads:
        thread.start()
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


@pytest.fixture
def own_gateway(model_dir, workdir):
    """An engine of 4096 tokens (a 4000-token stream lasts seconds, even on a fast machine) and its gateway."""
    engine = start_engine(model_dir, workdir / "drain-engine.log", extra=("--max-model-len", "4096"))
    gateway = start_gateway(
        workdir, gateway_config(workdir, engine.port, name="drain", grace_seconds=120), name="drain"
    )
    yield engine, gateway
    stop(gateway.process, signal.SIGKILL, 10)
    stop(engine.process, signal.SIGKILL, 10)


@pytest.fixture
def pair(model_dir, workdir, request):
    timeout = request.param
    extra = ("--max-model-len", "4096") + (("--shutdown-timeout", str(timeout)) if timeout else ())
    name = f"shutdown-{timeout}"
    engine = start_engine(model_dir, workdir / f"{name}-engine.log", extra=extra)
    # nginx's drain limit: short where the engine drops the streams anyway, long where it drains them.
    grace = 90 if timeout else 10
    gateway = start_gateway(workdir, gateway_config(workdir, engine.port, name=name, grace_seconds=grace), name=name)
    yield engine, gateway
    stop(gateway.process, signal.SIGKILL, 10)
    stop(engine.process, signal.SIGKILL, 10)


def test_sigquit_lets_nginx_finish_a_stream(own_gateway):
    _engine, gateway = own_gateway
    threads, (result,) = streaming(gateway.url, LONG)
    signalled = time.monotonic()
    gateway.process.send_signal(signal.SIGQUIT)
    time.sleep(0.5)
    assert refuses_connections(gateway.config.listen_port)  # no new requests once it drains
    threads[0].join(120)
    assert result["done"] and generated(result["chunks"]) == LONG["max_tokens"]  # the stream finished whole
    assert result["ended"] > signalled + 0.5  # it really was in flight when the signal came
    assert gateway.process.wait(30) == 0  # and nginx then exited by itself


@pytest.mark.parametrize("pair", [0], indirect=True)
def test_vllm_sigterm_by_default_aborts_the_stream_in_flight(pair, record_property):
    """Measured, not wished: vLLM 0.32.0 with the default --shutdown-timeout 0 ("abort") stops
    generating at once on SIGTERM and every stream in flight is cut. With one stream we saw a last
    event with finish_reason "abort" and [DONE], and an exit in about 0.5 s; with 8 streams, no
    final event at all, the connections held open until nginx's worker_shutdown_timeout closed
    them (10 s here; 60 s in another run), then exit 0. nginx's SIGQUIT drain cannot save a stream the engine has
    dropped; only the engine's --shutdown-timeout can (next test)."""
    engine, gateway = pair
    # 8 streams of 4000 tokens: seconds of generation even for the tiny model (thousands of tokens/s).
    threads, results = streaming(gateway.url, count=8)
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


@pytest.mark.parametrize("pair", [60], indirect=True)
def test_vllm_sigterm_with_a_shutdown_timeout_drains_the_stream(pair, record_property):
    """With --shutdown-timeout N ("drain"), SIGTERM waits up to N s for requests in flight."""
    engine, gateway = pair
    threads, results = streaming(gateway.url, count=8)
    signalled = time.monotonic()
    gateway.process.send_signal(signal.SIGQUIT)
    engine.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(120)
    code = engine.process.wait(90)
    exited = time.monotonic() - signalled
    observed = {
        "exit_code": code,
        "exit_seconds": round(exited, 2),
        "done": [r["done"] for r in results],
        "generated": [generated(r["chunks"]) for r in results],
        "of": 4000,
        "engine_processes_gone": group_gone(engine.process.pid),
    }
    record_property("vllm_sigterm_drain", observed)
    print("vllm SIGTERM with --shutdown-timeout observed:", observed)
    assert all(r["done"] and generated(r["chunks"]) == 4000 for r in results)
    assert finish_reasons(results[0])[-1] == "length"
