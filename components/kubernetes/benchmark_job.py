"""A one-off `vllm bench serve` Job against the private Service, results kept as JSON with a readable report.

It runs after the serving workload is ready (Pulumi waits for the Deployment's rollout), reads the
API key from the serving Secret, and does not hold `pulumi up` (skipAwait): read the results from
the Job's log or from the results volume (docs/benchmark.md). With a results volume, the Job then writes
REPORT_FILE next to the JSON: one self-contained HTML page with inline SVG charts of every run in the volume
(components/scripts/benchmark_report.py, standard-library Python, run in the same engine image), beside the
reference deployments' published figures for the same model and GPU (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.hardening import container_security, pod_security
from components.kubernetes.objects import manifest
from components.kubernetes.serving_workload import secret_env_var
from core.config.benchmark import BenchmarkConfig

# The ModelScope copy of ShareGPT that Compute Nest's ACS benchmark uses.
SHAREGPT_DATASET = "gliang1001/ShareGPT_V3_unfiltered_cleaned_split"
SHAREGPT_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"
MODELSCOPE_VERSION = "1.40.2"
REPORT_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_report.py"
REPORT_DIR = "/opt/llm-report"
REPORT_FILE = "benchmark-report.html"
RESULTS_DIR = "/results"
# The bench's arguments come as "$@"; its exit status is the Job's. A report that cannot be written is logged and
# does not fail a benchmark that ran.
REPORT_WRAPPER = (
    '"$@" || exit $?\n'
    f'python3 {REPORT_DIR}/benchmark_report.py "$RESULTS_DIR" --out "$RESULTS_DIR/{REPORT_FILE}" '
    '--model "$REPORT_MODEL" --gpu "$REPORT_GPU" || echo "benchmark report: not written" >&2\n'
)


@dataclass(frozen=True)
class BenchmarkArgs:
    namespace: pulumi.Input[str]
    image: str  # the vLLM image: it ships `vllm bench serve`
    base_url: pulumi.Input[str]  # http://<service>.<namespace>.svc.cluster.local:<port>
    served_model_name: str
    model_path: str  # tokenizer files, inside model_mount_path
    model_volume: Mapping[str, object]
    model_mount_path: str
    api_key_secret: pulumi.Input[str]
    api_key_secret_key: str
    config: BenchmarkConfig
    pip_index_url: str
    results_volume: Optional[Mapping[str, object]] = None  # None: results only in the Job's log
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)  # e.g. ACS extra ephemeral storage
    node_selector: Mapping[str, str] = field(default_factory=dict)  # e.g. ack-edge: cloud nodes, never the IDC
    # Secret with key HF_TOKEN, when the tokenizer comes from Hugging Face (model_path is a repo id of a
    # gated model); None: no token.
    hf_token_secret: Optional[pulumi.Input[str]] = None
    depends_on: Sequence[pulumi.Resource] = ()
    report_model: str = ""  # catalog model and GPU names: the report shows published figures for the pair
    report_gpu: str = ""


def bench_argv(args: BenchmarkArgs, results_dir: Optional[str], dataset_path: Optional[str]) -> list[str]:
    c = args.config
    argv = [
        "vllm",
        "bench",
        "serve",
        "--backend",
        "openai",
        "--endpoint",
        "/v1/completions",
        "--base-url",
        "$(BASE_URL)",
        "--model",
        args.model_path,
        "--served-model-name",
        args.served_model_name,
        "--dataset-name",
        c.dataset,
        "--num-prompts",
        str(c.prompts),
        "--request-rate",
        c.request_rate_text,
        "--ready-check-timeout-sec",
        "600",
    ]
    if c.dataset == "random":
        argv += ["--random-input-len", str(c.input_len), "--random-output-len", str(c.output_len)]
    else:
        argv += ["--dataset-path", dataset_path]
    if c.concurrency:
        argv += ["--max-concurrency", str(c.concurrency)]
    # p50/p90/p99 of every latency (vLLM's defaults: p99 of ttft, tpot, itl only).
    argv += ["--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99"]
    if results_dir:
        argv += ["--save-result", "--result-dir", results_dir, "--label", "llm-benchmark"]
    return argv


class BenchmarkJob(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: BenchmarkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:BenchmarkJob", name, None, opts)
        sharegpt = args.config.dataset == "sharegpt"
        volumes = [{"name": "model", **args.model_volume}, {"name": "data", "emptyDir": {}}]
        mounts = [
            {"name": "model", "mountPath": args.model_mount_path, "readOnly": True},
            {"name": "data", "mountPath": "/data"},
        ]
        results_dir = None
        env = [
            {"name": "BASE_URL", "value": args.base_url},
            secret_env_var("OPENAI_API_KEY", args.api_key_secret, args.api_key_secret_key),
        ]
        report = None
        if args.results_volume is not None:
            volumes.append({"name": "results", **args.results_volume})
            mounts.append({"name": "results", "mountPath": RESULTS_DIR})
            results_dir = RESULTS_DIR
            report = k8s.core.v1.ConfigMap(
                f"{name}-report",
                metadata={"namespace": args.namespace, "name": f"{name}-report"},
                data={REPORT_SCRIPT.name: REPORT_SCRIPT.read_text()},
                opts=pulumi.ResourceOptions(parent=self),
            )
            volumes.append({"name": "report", "configMap": {"name": report.metadata["name"]}})
            mounts.append({"name": "report", "mountPath": REPORT_DIR, "readOnly": True})
            env += [
                {"name": "RESULTS_DIR", "value": RESULTS_DIR},
                {"name": "REPORT_MODEL", "value": args.report_model},
                {"name": "REPORT_GPU", "value": args.report_gpu},
            ]
        if args.hf_token_secret is not None:
            env.append(secret_env_var("HF_TOKEN", args.hf_token_secret, "HF_TOKEN"))
        init = []
        if sharegpt:
            # ShareGPT is a file, not a generator: fetch it once per run from ModelScope into /data.
            init.append(
                {
                    "name": "fetch-dataset",
                    "image": args.image,
                    "command": ["sh", "-c"],
                    "args": [
                        'pip install --quiet --index-url "$PIP_INDEX_URL" "modelscope==$MODELSCOPE_VERSION" && '
                        'modelscope download --dataset "$DATASET" "$DATASET_FILE" --local_dir /data'
                    ],
                    "env": [
                        {"name": "PIP_INDEX_URL", "value": args.pip_index_url},
                        {"name": "MODELSCOPE_VERSION", "value": MODELSCOPE_VERSION},
                        {"name": "DATASET", "value": SHAREGPT_DATASET},
                        {"name": "DATASET_FILE", "value": SHAREGPT_FILE},
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "resources": _resources(2, 4),
                    "securityContext": container_security(),
                }
            )
        argv = bench_argv(args, results_dir, f"/data/{SHAREGPT_FILE}" if sharegpt else None)
        container = {
            "name": "bench",
            "image": args.image,
            "securityContext": container_security(),
            **(
                {"command": ["sh", "-c", REPORT_WRAPPER, "bench"], "args": argv}
                if report is not None
                else {"command": argv}
            ),
            "env": env,
            "volumeMounts": mounts,
            "resources": _resources(4, 16),
        }
        self.job = k8s.batch.v1.Job(
            name,
            metadata={
                "namespace": args.namespace,
                "name": name,
                # A benchmark must not hold `pulumi up`, and its failure must not fail the deployment.
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec=manifest(
                {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {
                            "labels": {"app": name, **args.pod_labels, "app.kubernetes.io/component": "benchmark"},
                            "annotations": dict(args.pod_annotations) or None,
                        },
                        "spec": {
                            "nodeSelector": dict(args.node_selector) or None,
                            "restartPolicy": "Never",
                            "initContainers": init or None,
                            # It talks to the model's Service, never to the API server.
                            "automountServiceAccountToken": False,
                            "securityContext": pod_security(),
                            "containers": [container],
                            "volumes": volumes,
                        },
                    },
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on), delete_before_replace=True),
        )
        self.register_outputs({"job": self.job.metadata["name"]})


def _resources(cpu: int, memory_gib: int) -> dict:
    amount = {"cpu": str(cpu), "memory": f"{memory_gib}Gi"}
    return {"requests": amount, "limits": amount}
