"""The one-time model import on gke: fetch-model.sh downloads from Hugging Face into the GCS bucket.

The Job is the shared import's (components.model_import.job_spec: same script, marker, deadline,
backoff, awaited by `pulumi up`) with three differences: the source is Hugging Face with the token
from a Kubernetes Secret (secretKeyRef), the target is the bucket mounted through GCS FUSE instead of
a PVC, and it runs on a CPU node (the stack's system pool), not a GPU node: the download needs no
GPU, and it need not wait for (nor hold idle) the GPU nodes, which can come up meanwhile.

Hugging Face's Xet downloader (hf_xet, a dependency of huggingface_hub on x86_64 and arm64) keeps a
chunk cache of 10 GB by default under $HF_HOME/xet (xet-core DEFAULT_CHUNK_CACHE_CAPACITY; huggingface_hub
docs: "To disable the Xet cache, set HF_XET_CHUNK_CACHE_SIZE_BYTES=0"). The weights are read once, so the
cache is off and what hf_xet keeps besides lives on the scratch volume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.model_import import SCRATCH, ModelImportArgs, import_job, job_spec
from components.kubernetes.serving_workload import secret_env_var

HF_HUB_VERSION = "0.34.4"
PYPI = "https://pypi.org/simple/"
# The scratch volume: pip's files and hf_xet's own state (its chunk cache is off). What hf_xet keeps there besides
# the chunk cache (shard metadata) was not measured: twice the shared import's 10 GiB.
SCRATCH_GIB = 20
XET_ENV = {"HF_XET_CHUNK_CACHE_SIZE_BYTES": "0", "HF_XET_CACHE": f"{SCRATCH}/xet"}


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
    volumes = {
        "model": {"name": "model", **dict(args.model_volume)},
        "scratch": {"name": "scratch", "emptyDir": {"sizeLimit": f"{SCRATCH_GIB}Gi"}},
    }
    pod["volumes"] = [volumes.get(v["name"], v) for v in pod["volumes"]]
    container = pod["containers"][0]
    container["env"] += [
        {"name": "MODEL_SOURCE", "value": "huggingface"},
        {"name": "HF_HUB_VERSION", "value": HF_HUB_VERSION},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
        *({"name": k, "value": v} for k, v in XET_ENV.items()),
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
