"""Every example stack, as the program builds it, run for real: its engine's argv and environment (a serving
pod's engine container; the ecs host's engine command), behind its gateway's nginx.conf (the pod's ConfigMap; the
ecs user-data), with only the substitutions of substitutions.py.

Stacks that would run exactly the same (same argv after the substitutions, same environment, same conf) share
one engine; the test ids name them all.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import gateway_check as check
import pytest
import substitutions as subs
import tiny_model
from conftest import ServedStack, exported_stacks, stack_variants, start_stack, stop
from test_gateway_live import REFUSED_BY_NAME, _stream, check_readiness_script

from core.config.scaling import QUEUE_METRIC

VARIANTS = stack_variants()
# The HPA's metric (ack, ack-edge), and what a dashboard of the engine's load reads.
METRICS = (QUEUE_METRIC, "vllm:num_requests_running", "vllm:kv_cache_usage_perc")


@pytest.fixture(scope="session", params=VARIANTS, ids=["+".join(v) for v in VARIANTS])
def served(request, model_dir, workdir):
    names = request.param
    stack = start_stack(exported_stacks()[names[0]], model_dir, workdir, names[0])
    stack.names = names
    yield stack
    stop(stack.gateway.process, signal.SIGQUIT, 30)
    stop(stack.engine.process)


def chat(served: ServedStack) -> dict:
    return {
        "model": served.served_name,
        "messages": [{"role": "user", "content": "Who are you?"}],
        "max_tokens": 32,
        "temperature": 0,
    }


def test_the_stacks_run_what_the_program_builds():
    """Each example stack's engine listens on loopback behind its gateway, with the program's shutdown drain."""
    stacks = exported_stacks()
    assert set(stacks) == {"dev", "prod", "acs", "acs-r1", "ack", "ack-edge", "gke", "gke-l4", "kubernetes"}
    for name, stack in stacks.items():
        engine = stack["engine"]
        argv = engine.get("args") or engine["command"]
        assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8001", name
        # vLLM before 0.18 (the mainland default image's 0.11.0) has no --shutdown-timeout and would refuse it.
        assert ("--shutdown-timeout" in argv) is (stack["engine_version"] != "0.11.0"), name
        assert check.audit_conf(stack["nginx_conf"]) == [], name
        if stack["kind"] == "pod" and "--shutdown-timeout" in argv:
            assert int(argv[argv.index("--shutdown-timeout") + 1]) + 35 < stack["grace_seconds"], name
            assert [p["containerPort"] for p in stack["gateway"]["ports"]] == [8000, 8002], name


def test_every_path_but_health_and_the_allowlist_is_refused(served):
    routes = check.engine_routes(served.engine.url)
    routes.update({path: {"GET", "POST"} for path in REFUSED_BY_NAME})
    allowed = check.allowed_routes(served.export["nginx_conf"])
    assert {("/v1/models", "GET"), ("/v1/chat/completions", "POST"), ("/v1/completions", "POST")} <= allowed
    assert check.probe(served.gateway.url, served.key, routes, allowed, served.served_name) == []


def test_the_allowlist_answers_with_the_key_only(served):
    for path, method in sorted(check.allowed_routes(served.export["nginx_conf"])):
        body = chat(served) if method == "POST" else None
        if path == "/v1/completions":
            body = {"model": served.served_name, "prompt": "Who", "max_tokens": 8}
        for key in (None, "wrong-key-0123456789", served.key[:-1], served.key + "x"):
            status, answer, _ = check.request(method, served.gateway.url + path, key, body)
            assert status == 401 and check.from_gateway(status, answer), (path, key, status)
        status, answer, _ = check.request(method, served.gateway.url + path, served.key, body)
        assert status == 200, (path, answer[:200])


def test_a_streamed_chat_carries_the_reasoning_then_the_content(served):
    """--reasoning-parser from the catalog (deepseek_r1 for every example model) splits the tiny model's answer."""
    chunks, done = _stream(f"{served.gateway.url}/v1/chat/completions", chat(served), key=served.key)
    deltas = [c["choices"][0]["delta"] for _, c in chunks if c["choices"]]
    assert done
    assert "".join(d.get("reasoning") or "" for d in deltas) == tiny_model.REASONING
    assert "".join(d.get("content") or "" for d in deltas) == tiny_model.CONTENT
    assert not any("reasoning_content" in d for d in deltas)


def test_the_metrics_port_serves_what_the_autoscaler_reads(served):
    check.request(
        "POST",
        f"{served.gateway.url}/v1/completions",
        served.key,
        {"model": served.served_name, "prompt": "x", "max_tokens": 2},
    )
    status, body, _ = check.request("GET", f"{served.gateway.metrics_url}/metrics")
    assert status == 200
    for name in METRICS:
        assert re.search(rf"^{re.escape(name)}\{{", body.decode(), re.M), name
    assert check.request("GET", f"{served.gateway.url}/metrics", served.key)[0] == 404


def test_the_pods_probes_pass_against_the_running_containers(served):
    """The engine's exec probes (its own /health on loopback) and the gateway's HTTP and TCP probes."""
    if served.export["kind"] != "pod":
        pytest.skip("the ecs host has no probes: ready.sh checks it (next test)")
    engine = served.export["engine"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = subs.pod_command(engine[probe]["exec"]["command"], served.engine.port)
        command[0] = sys.executable if command[0] in ("python3", "python") else command[0]
        result = subprocess.run(command, capture_output=True, text=True, timeout=engine[probe]["timeoutSeconds"])
        assert result.returncode == 0, (probe, result.stderr)
    gateway = served.export["gateway"]
    readiness = gateway["readinessProbe"]["httpGet"]
    status, body, _ = check.request("GET", served.gateway.url + readiness["path"])
    assert readiness["port"] == "http" and status == 200 and body == b""
    assert gateway["livenessProbe"]["tcpSocket"]["port"] == "http"
    socket.create_connection(("127.0.0.1", served.gateway.config.listen_port), timeout=2).close()


def test_the_probes_fail_when_the_engine_does_not_answer(served, workdir):
    """The same probe commands against a port where nothing listens: they must fail, or they prove nothing."""
    if served.export["kind"] != "pod":
        pytest.skip("the ecs host has no probes")
    engine = served.export["engine"]
    command = subs.pod_command(engine["startupProbe"]["exec"]["command"], _closed_port())
    command[0] = sys.executable
    assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0


def test_the_hosts_readiness_script_passes_against_its_gateway(served, tmp_path):
    """ecs: `pulumi up` ends when ready.sh has seen /health, 401 without the key, 404 on /invocations and 200
    with the key, through the host's own gateway."""
    if served.export["kind"] != "host":
        pytest.skip("pods are checked by their probes (previous tests)")
    check_readiness_script(served.gateway.config.listen_port, served.key, tmp_path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_curl_and_openai_outputs_work_through_the_gateway(served, tmp_path):
    outputs = served.export["outputs"]
    url = (outputs["privateApiUrl"], f"{served.gateway.url}/v1")
    curl = subprocess.run(
        ["bash", "-c", subs.client_strings(outputs["curlCommand"], served.key, url)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert curl.returncode == 0, curl.stderr
    assert json.loads(curl.stdout)["choices"][0]["message"]["content"] == tiny_model.CONTENT
    script = tmp_path / "snippet.py"
    script.write_text(subs.client_strings(outputs["openaiSnippet"], served.key, url))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == tiny_model.CONTENT


def test_the_benchmark_jobs_argv_runs_through_the_gateway_and_writes_where_the_job_mounts_results(served, tmp_path):
    benchmarked = [name for name in served.names if exported_stacks()[name]["benchmark"]]
    if not benchmarked:
        pytest.skip(f"{', '.join(served.names)}: no benchmark Job")
    assert len(benchmarked) == 1, "stacks that share a run have the same argv, so one benchmark is enough"
    name = benchmarked[0]
    job = exported_stacks()[name]["benchmark"]
    argv = job.get("args") or job["command"]
    mounted = argv[argv.index("--result-dir") + 1]
    assert mounted == exported_stacks()[name]["benchmark_results_mount"], "results go to the mounted volume"
    results, dataset = tmp_path / "results", tmp_path / "sharegpt.json"
    subs.sharegpt_file(dataset)
    bench = subs.stack_bench_argv(job, served.gateway.url, str(served.engine.model_dir), str(results), str(dataset))
    env = {e["name"]: e.get("value") for e in job["env"] if "value" in e}
    env["OPENAI_API_KEY"] = served.key  # the Job reads it from the stack's Secret
    venv_bin = Path(sys.executable).parent
    result = subprocess.run(
        [str(venv_bin / "vllm"), *bench[1:]],
        env={**os.environ, **subs.CPU_ENV, **env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (written,) = results.glob("*.json")
    data = json.loads(written.read_text())
    assert data["completed"] == 4 and data["label"] == "llm-benchmark"
