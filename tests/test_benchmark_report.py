"""The benchmark report: one self-contained HTML file next to the raw JSON, from real `vllm bench serve` results
(tests/data/bench: two runs of the Job's argv at 2 and inf requests/s against the real engine, copied from
tests/engine/test_benchmark_report.py), and the Job that writes it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from harness import ROOT, run_stack, unwrap

from components.kubernetes.benchmark_job import REPORT_FILE, REPORT_SCRIPT, REPORT_WRAPPER
from components.scripts import benchmark_report as report

RESULTS = ROOT / "tests" / "data" / "bench"


@pytest.fixture(scope="module")
def runs():
    return report.load_results([str(RESULTS)])


def _svgs(page: str) -> list[ET.Element]:
    import re

    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", page, re.S)]


def test_two_rates_give_percentiles_throughput_and_latency_against_rate_beside_published_figures(runs):
    assert [report.rate_of(r) for r in runs] == [2.0, float("inf")]
    page = report.render(runs, "DeepSeek-R1", "H20")
    charts = _svgs(page)  # well-formed SVG, inline
    titles = [c.find("{http://www.w3.org/2000/svg}text").text for c in charts]
    assert titles == [
        "Time to first token",
        "Time per output token",
        "Inter-token latency",
        "Throughput",
        "Time to first token against request rate",
        "Inter-token latency against request rate",
        "End-to-end latency against request rate",
        "Throughput against request rate",
    ]
    latest = runs[-1]
    assert f"{latest['p90_ttft_ms']:.2f}" in page and f"{runs[0]['output_throughput']:.2f}" in page
    assert "246.46" in page and "Compute Nest LLM inference, ACS edition" in page  # the ACS document's published TTFT
    assert "<script" not in page and "<link" not in page  # self-contained


def test_no_published_figures_for_another_model_or_gpu_and_one_rate_has_no_rate_chart(runs):
    page = report.render(runs[:1], "DeepSeek-R1-Distill-Qwen-7B", "A10")
    assert "No reference deployment published figures" in page and "246.46" not in page
    assert "against request rate" not in page and len(_svgs(page)) == 4


def test_nothing_to_report_is_an_error(tmp_path):
    assert report.main([str(tmp_path), "--out", str(tmp_path / "r.html")]) == 1
    with pytest.raises(ValueError):
        report.render([])


def test_the_wrapper_keeps_the_benchmarks_exit_status_and_writes_the_report_next_to_the_json(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    scripts = tmp_path / "opt"
    scripts.mkdir()
    wrapper = REPORT_WRAPPER.replace("/opt/llm-report", str(scripts))
    shutil.copy(REPORT_SCRIPT, scripts / REPORT_SCRIPT.name)
    env = {**os.environ, "RESULTS_DIR": str(results), "REPORT_MODEL": "DeepSeek-R1", "REPORT_GPU": "H20"}
    failed = subprocess.run(["sh", "-c", wrapper, "bench", "false"], env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and not (results / REPORT_FILE).exists()
    done = subprocess.run(["sh", "-c", wrapper, "bench", "true"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"benchmark report: {results / REPORT_FILE} (2 run(s))" in done.stdout
    assert "246.46" in (results / REPORT_FILE).read_text()


def test_the_job_runs_the_bench_then_the_report_from_its_configmap_and_the_outputs_say_where():
    run = run_stack("gke")  # the gke example benchmarks, into the bucket
    job = next(o for o in run.kubernetes_objects() if o["kind"] == "Job" and "benchmark" in o["metadata"]["name"])
    pod = job["spec"]["template"]["spec"]
    bench = pod["containers"][0]
    assert bench["command"] == ["sh", "-c", REPORT_WRAPPER, "bench"]
    argv = bench["args"]
    assert argv[:3] == ["vllm", "bench", "serve"] and argv[argv.index("--result-dir") + 1] == "/results"
    assert argv[argv.index("--metric-percentiles") + 1] == "50,90,99"
    assert argv[argv.index("--percentile-metrics") + 1] == "ttft,tpot,itl,e2el"
    env = {e["name"]: e.get("value") for e in bench["env"]}
    assert env["REPORT_MODEL"] == "DeepSeek-R1" and env["REPORT_GPU"] == "B200" and env["RESULTS_DIR"] == "/results"
    configmap = run.kubernetes_object("ConfigMap", job["metadata"]["name"] + "-report")
    assert configmap["data"] == {"benchmark_report.py": REPORT_SCRIPT.read_text()}
    volume = next(v for v in pod["volumes"] if v["name"] == "report")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert {"name": "report", "mountPath": "/opt/llm-report", "readOnly": True} in bench["volumeMounts"]
    assert run.outputs["benchmarkReport"] == f"gs://{run.outputs['modelBucket']}/benchmarks/{REPORT_FILE}"


def test_alibaba_reports_go_to_the_bucket_and_kubernetes_says_there_is_no_volume():
    acs = run_stack("acs-r1")
    assert (
        unwrap(acs.outputs["benchmarkReport"]) == f"oss://{unwrap(acs.outputs['modelBucket'])}/benchmarks/{REPORT_FILE}"
    )
    existing = run_stack("kubernetes", {"benchmark.enabled": True})
    assert unwrap(existing.outputs["benchmarkReport"]).startswith("none: no results volume")
    job = next(o for o in existing.kubernetes_objects() if o["kind"] == "Job" and "benchmark" in o["metadata"]["name"])
    assert "args" not in job["spec"]["template"]["spec"]["containers"][0]  # the bench alone, no report


def test_the_results_are_real_bench_output():
    data = json.loads(next(RESULTS.glob("*2.0qps*.json")).read_text())
    assert data["completed"] == 4 and data["label"] == "llm-benchmark" and data["request_rate"] == 2.0
