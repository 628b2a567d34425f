"""The one-time model import: a Kubernetes Job that downloads the weights into the model volume.

It runs components/scripts/fetch-model.sh, the same script the ECS host runs, so the download logic
exists once. `pulumi up` waits for the Job: pulumi_kubernetes awaits a batch/v1 Job until its
`Complete` condition is true and fails at once on `Failed` (see the Job resource's documentation),
bounded by the custom timeouts set here. A rerun is cheap: the script checks a marker naming the
model and revision first, and ModelScope resumes partial downloads and skips complete files.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.alibaba import host_scripts
from components.kubernetes.hardening import container_security, pod_security
from components.kubernetes.objects import manifest
from core.naming import dns_name

VOLUME_MOUNT = "/models"
SCRIPT_DIR = "/opt/llm"
SCRIPT_FILE = "fetch-model.sh"
SCRATCH = "/scratch"  # the downloader's packages, pip's and ModelScope's caches: never the model itself
BACKOFF_LIMIT = 4  # pod restarts before the Job fails; each restart resumes the download
# The Job's own deadline (activeDeadlineSeconds) ends first, so a slow download fails with the Job's
# "DeadlineExceeded" reason rather than a bare Pulumi timeout.
AWAIT_MARGIN_MINUTES = 5
CPU = 4  # SHA-256 checks and up to 8 parallel downloads
MEMORY_GIB = 8
SCRATCH_GIB = 10


@dataclass(frozen=True)
class ModelImportArgs:
    namespace: pulumi.Input[str]
    claim: pulumi.Input[str]  # PVC to write into
    model_id: str  # ModelScope id, e.g. Qwen/QwQ-32B
    revision: str
    sub_path: str  # directory inside the volume for this model (the serving pods read the same path)
    image: str  # pinned image with python3 + pip (the engine image is fine: it is reachable from the region)
    timeout_minutes: int  # how long `pulumi up` waits for the download
    pip_index_url: str = host_scripts.PIP_INDEX_URL
    pod_labels: Mapping[str, str] = field(default_factory=dict)  # e.g. ACS compute-class labels for a CPU pod
    depends_on: Sequence[pulumi.Resource] = ()
    pod_annotations: Mapping[str, str] = field(default_factory=dict)  # e.g. ACS extra ephemeral storage
    node_selector: Mapping[str, str] = field(default_factory=dict)  # e.g. ack-edge: cloud nodes, never the IDC
    env: Mapping[str, str] = field(default_factory=dict)  # extra plain environment for the downloader
    cpu: int = CPU  # fewer where nodes are small (ack's 4-vCPU system nodes allocate less than 4)


class ModelImport(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: ModelImportArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:ModelImport", name, None, opts)
        _check(args)
        self.job = import_job(
            self,
            name,
            args.namespace,
            args.timeout_minutes,
            args.depends_on,
            lambda config_map, labels: job_spec(args, config_map, labels),
        )
        self.register_outputs({"job": self.job.metadata["name"]})


def import_job(
    parent: pulumi.Resource,
    name: str,
    namespace: pulumi.Input[str],
    timeout_minutes: int,
    depends_on: Sequence[pulumi.Resource],
    spec_for: Callable[[pulumi.Output[str], Mapping[str, str]], dict],
) -> k8s.batch.v1.Job:
    """The fetch script as a ConfigMap and the Job that runs it (`spec_for` builds the Job spec)."""
    job_name = dns_name(name)  # Job names become pod label values: a DNS label
    # app.kubernetes.io/component: what the NetworkPolicies select (components/kubernetes/network_policies.py).
    labels = {
        "app.kubernetes.io/name": "model-import",
        "app.kubernetes.io/instance": job_name,
        "app.kubernetes.io/component": "model-import",
    }
    script = k8s.core.v1.ConfigMap(
        f"{name}-script",
        metadata={"name": dns_name(name, suffix="script"), "namespace": namespace, "labels": labels},
        data={SCRIPT_FILE: host_scripts.fetch_model_script()},
        opts=pulumi.ResourceOptions(parent=parent),
    )
    wait = f"{timeout_minutes + AWAIT_MARGIN_MINUTES}m"
    return k8s.batch.v1.Job(
        name,
        metadata={
            "name": job_name,
            "namespace": namespace,
            "labels": labels,
            # A Job that failed or timed out is replaced on the next `pulumi up` (and resumes),
            # instead of Pulumi waiting again on the failed one.
            "annotations": {"pulumi.com/replaceUnready": "true"},
        },
        spec=manifest(spec_for(script.metadata["name"], labels)),
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=[script, *depends_on],
            # A Job's pod template is immutable: a new model, revision or image means a new Job. Its
            # name is fixed, so the old one goes first. No ttlSecondsAfterFinished: the cluster would
            # delete the Job behind Pulumi's back and the next update would recreate it.
            replace_on_changes=["spec"],
            delete_before_replace=True,
            custom_timeouts=pulumi.CustomTimeouts(create=wait, update=wait),
        ),
    )


def target_dir(sub_path: str) -> str:
    return posixpath.join(VOLUME_MOUNT, sub_path)


def job_spec(args: ModelImportArgs, script_config_map: pulumi.Input[str], labels: Mapping[str, str]) -> dict:
    """A single pod that runs fetch-model.sh into the claim; restarts resume, the deadline bounds it."""
    env = {
        **host_scripts.fetch_model_env(args.pip_index_url),
        "MODELSCOPE_LIB": f"{SCRATCH}/modelscope-lib",
        "HOME": SCRATCH,
        "PYTHONUNBUFFERED": "1",
        **args.env,
    }
    container = {
        "name": "fetch-model",
        "image": args.image,
        "command": ["bash", f"{SCRIPT_DIR}/{SCRIPT_FILE}", args.model_id, args.revision, target_dir(args.sub_path)],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": {"requests": _amount(args.cpu), "limits": _amount(args.cpu)},
        "volumeMounts": [
            {"name": "model", "mountPath": VOLUME_MOUNT},
            {"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True},
            {"name": "scratch", "mountPath": SCRATCH},
        ],
        "securityContext": container_security(),  # root (pip and the download write as the image's user)
    }
    metadata: dict = {"labels": {**args.pod_labels, **labels}}
    if args.pod_annotations:
        metadata["annotations"] = dict(args.pod_annotations)
    spec: dict = {}
    if args.node_selector:
        spec["nodeSelector"] = dict(args.node_selector)
    return {
        "backoffLimit": BACKOFF_LIMIT,
        "activeDeadlineSeconds": args.timeout_minutes * 60,
        "template": {
            "metadata": metadata,
            "spec": {
                **spec,
                "restartPolicy": "OnFailure",
                "automountServiceAccountToken": False,  # it talks to ModelScope and the mirror, never the API server
                "securityContext": pod_security(),
                "containers": [container],
                "volumes": [
                    {"name": "model", "persistentVolumeClaim": {"claimName": args.claim}},
                    {"name": "script", "configMap": {"name": script_config_map, "defaultMode": 0o444}},
                    {"name": "scratch", "emptyDir": {"sizeLimit": f"{SCRATCH_GIB}Gi"}},
                ],
            },
        },
    }


def _amount(cpu: int) -> dict:
    return {"cpu": str(cpu), "memory": f"{MEMORY_GIB}Gi"}


def _check(args: ModelImportArgs) -> None:
    if args.timeout_minutes <= 0:
        raise ValueError(f"timeout_minutes must be positive, got {args.timeout_minutes}")
    parts = args.sub_path.split("/")
    if not args.sub_path or args.sub_path.startswith("/") or ".." in parts or "" in parts:
        raise ValueError(f"sub_path must be a relative path inside the volume, got {args.sub_path!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+", args.model_id):
        raise ValueError(f"model_id must look like <org>/<name>, got {args.model_id!r}")
