"""The one-time model import on gke: fetch-model.sh downloads from Hugging Face into the GCS bucket.

The Job is the shared import's (components.model_import.job_spec: same script, marker, deadline,
backoff, awaited by `pulumi up`) with three differences: the source is Hugging Face with the token
from a Kubernetes Secret (secretKeyRef), the target is the bucket mounted through GCS FUSE instead of
a PVC, and it runs on an A4 node, whose local SSD holds GCS FUSE's write staging (the weights are
~700 GB) and whose network is the fastest in the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.model_import import ModelImportArgs, import_job, job_spec
from components.kubernetes.serving_workload import secret_env_var

HF_HUB_VERSION = "0.34.4"
PYPI = "https://pypi.org/simple/"


@dataclass(frozen=True)
class HfModelImportArgs:
    namespace: pulumi.Input[str]
    model_volume: Mapping[str, object]  # writable volume source (a GCS FUSE CSI volume)
    model_id: str  # Hugging Face repo id
    revision: str
    sub_path: str
    image: str
    timeout_minutes: int
    token_secret: Optional[pulumi.Input[str]] = None  # Secret holding HF_TOKEN; None: anonymous
    tolerations: Sequence[Mapping[str, object]] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()


def hf_job_spec(args: HfModelImportArgs, script_config_map: pulumi.Input[str], labels: Mapping[str, str]) -> dict:
    shared = ModelImportArgs(
        namespace=args.namespace,
        claim="unused",
        model_id=args.model_id,
        revision=args.revision,
        sub_path=args.sub_path,
        image=args.image,
        timeout_minutes=args.timeout_minutes,
        pip_index_url=PYPI,
    )
    spec = job_spec(shared, script_config_map, labels)
    pod = spec["template"]["spec"]
    pod["volumes"] = [
        {"name": "model", **dict(args.model_volume)} if v["name"] == "model" else v for v in pod["volumes"]
    ]
    container = pod["containers"][0]
    container["env"] += [
        {"name": "MODEL_SOURCE", "value": "huggingface"},
        {"name": "HF_HUB_VERSION", "value": HF_HUB_VERSION},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
    ]
    if args.token_secret is not None:
        container["env"].append(secret_env_var("HF_TOKEN", args.token_secret, "HF_TOKEN"))
    if args.tolerations:
        pod["tolerations"] = [dict(t) for t in args.tolerations]
    if args.node_selector:
        pod["nodeSelector"] = dict(args.node_selector)
    return spec


class HfModelImport(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: HfModelImportArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:HfModelImport", name, None, opts)
        self.job = import_job(
            self,
            name,
            args.namespace,
            args.timeout_minutes,
            args.depends_on,
            lambda config_map, labels: hf_job_spec(args, config_map, labels),
        )
        self.register_outputs({"job": self.job.metadata["name"]})
