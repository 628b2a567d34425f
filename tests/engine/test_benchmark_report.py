"""The benchmark report from real `vllm bench serve` results: the Job's own bench argv (components.kubernetes
.benchmark_job.bench_argv), run at two request rates against the session engine through the gateway, then the
Job's report script (components/scripts/benchmark_report.py) on the results directory, as the Job runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import substitutions as subs
from conftest import ROOT

from components.kubernetes.benchmark_job import REPORT_FILE, BenchmarkArgs, bench_argv
from core.config.benchmark import BenchmarkConfig

SCRIPT = ROOT / "components" / "scripts" / "benchmark_report.py"


def _bench(gateway, engine, results: Path, rate: str) -> None:
    config = BenchmarkConfig(enabled=True, prompts=4, request_rate=rate, input_len=16, output_len=8)
    args = BenchmarkArgs(
        namespace="llm",
        image="vllm",
        base_url="$(BASE_URL)",
        served_model_name=subs.SERVED_NAME,
        model_path="/models/x",
        model_volume={},
        model_mount_path="/models",
        api_key_secret="s",
        api_key_secret_key="k",
        config=config,
        pip_index_url="",
    )
    argv = subs.stack_bench_argv(
        {"command": bench_argv(args, "/results", None)}, gateway.url, str(engine.model_dir), str(results), ""
    )
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, **subs.CPU_ENV, "OPENAI_API_KEY": subs.API_KEY, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [str(venv_bin / "vllm"), *argv[1:]], env=env, capture_output=True, text=True, timeout=600, cwd=results
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_report_of_two_rates_has_every_percentile_and_latency_against_rate(gateway, engine, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for rate in ("2", "inf"):
        _bench(gateway, engine, results, rate)
    written = sorted(results.glob("*.json"))
    assert len(written) == 2
    data = json.loads(written[0].read_text())
    for metric in ("ttft", "tpot", "itl", "e2el"):
        for p in ("50", "90", "99"):
            assert isinstance(data[f"p{p}_{metric}_ms"], float), (metric, p)  # --metric-percentiles 50,90,99
    out = results / REPORT_FILE
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(results), "--out", str(out), "--model", "DeepSeek-R1", "--gpu", "H20"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    page = out.read_text()
    assert page.count("<svg") == 4 + 4  # TTFT, TPOT, ITL, throughput; then TTFT, ITL, E2E, throughput vs rate
    assert "against request rate" in page and "Compute Nest LLM inference, ACS edition" in page
    assert f"{data['output_throughput']:.2f}" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
