"""Optional Fluid cache: JindoRuntime workers keep the model in memory, in front of the OSS bucket.

Fluid turns a Dataset (here: oss://<bucket>/<prefix>/) into a PVC of the same name in the same
namespace; serving mounts that claim instead of the raw OSS volume, with the same layout (the model
at `<sub_path>` of the claim, as in OssModelStore's serving claim). A DataLoad warms the cache once.
Compute Nest's vLLM deployment on ACS reports about half the model load time with it.

Which Fluid: on ACS the serving pods are serverless, so the FUSE client must be injected as a sidecar.
Alibaba documents that only its `ack-fluid` build does this for ACS pods (>= 1.0.11) and that it
cannot coexist with open-source Fluid; its images come from the region's VPC registry, while the
upstream chart pulls from Docker Hub, which mainland regions cannot reach. So the default is
`ack_fluid(region)` (1.0.13, the version the Compute Nest ACS template installs); `UPSTREAM_FLUID`
(fluid-cloudnative, 1.0.8) is for clusters with ordinary nodes and Docker Hub access.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.alibaba.oss_model_store import internal_endpoint
from components.kubernetes.objects import object_name
from core import sizing, versions

API_VERSION = "data.fluid.io/v1alpha1"
WORKER_OVERHEAD_GIB = 8  # Jindo worker process beside its in-memory cache
MAX_MEMORY_PER_CPU_GIB = 8  # ACS pods allow at most 1:8 CPU:memory
WORKER_CPUS = (4, 8, 16, 32, 64)
MAX_WORKER_MEMORY_GIB = 512
CACHE_HIGH_WATERMARK = "0.99"
CACHE_LOW_WATERMARK = "0.95"


@dataclass(frozen=True)
class FluidChart:
    """A pinned Fluid Helm chart and the values it needs."""

    chart: str  # a chart name in `repo`, or a chart tarball URL
    version: Optional[str]  # None: a tarball carries its version
    repo: Optional[str]  # None: `chart` is a tarball URL
    values: Mapping[str, object] = field(default_factory=dict)
    release_name: str = "fluid"
    namespace: str = "fluid-system"


# Open-source Fluid (Fluid 1.0.8, chart bumped in fluid-cloudnative/fluid#5249). Jindo's controller on.
UPSTREAM_FLUID = FluidChart(
    chart="fluid",
    version="1.0.8",
    repo="https://fluid-cloudnative.github.io/charts",
    values={"runtime": {"jindo": {"enabled": True}}},
)


def ack_fluid(region: str) -> FluidChart:
    """Alibaba's ack-fluid for ACS: images over the VPC from the region's registry, ACS sidecar injection.

    Installed from the catalog's tarball with the values the Compute Nest ACS template passes
    (quickstart-vllm-ack .computenest/ros_templates/acs-ecs.yaml at f9af47c, lines 540-845; audit D10, claim
    12): the top-level keys, the image prefix and version pair, and the CRD upgrader. The other values (CSI,
    runtimes, webhook) stay at the chart's defaults, which the template also sets to what they are believed
    to be; not verified against the chart itself.
    """
    version = versions.ACK_FLUID_IMAGE_VERSION.value
    return FluidChart(
        chart=versions.ACK_FLUID_CHART.value,
        version=None,
        repo=None,
        release_name="ack-fluid",
        values={
            "region": region,
            "cluster_profile": "ManagedKubernetes",
            "clusterProfileforApp": "Acs",
            "pullImageByVPCNetwork": True,
            "appendImageTag": True,
            "workdir": "/tmp",
            "helmDriver": "configmap",
            "image": {"imagePullSecrets": []},
            "imagePrefix": "acs",
            "version": version,
            "namespace": "fluid-system",
            "crdUpgrade": {
                "enabled": True,
                "ttlSecondsAfterFinished": 259200,
                "imagePrefix": "acs",
                "imageName": "fluid-crd-upgrader",
                "imageTag": version,
            },
            "dataset": {"controller": {"imagePrefix": "acs", "imageName": "dataset-controller", "imageTag": version}},
        },
    )


@dataclass(frozen=True)
class FluidCacheArgs:
    namespace: pulumi.Input[str]  # where the Dataset, and so the claim serving mounts, live
    bucket: pulumi.Input[str]
    prefix: str  # object prefix cached, e.g. "models" (OssModelStoreArgs.model_prefix)
    region: str
    credentials_secret: Optional[pulumi.Input[str]]  # Secret with akId/akSecret (OssModelStore, access-key mode)
    cache_gib: int  # total cache: the model's weights plus margin
    pod_labels: Mapping[str, str] = field(default_factory=dict)  # master and workers, e.g. ACS compute class
    worker_annotations: Mapping[str, str] = field(default_factory=dict)
    preload_path: Optional[str] = None  # under prefix, e.g. "Qwen/QwQ-32B"; None: everything under prefix
    worker_cache_gib: int = sizing.FLUID_WORKER_CACHE_GIB  # memory cache per worker; more cache, more workers
    chart: Optional[FluidChart] = None  # None: ack_fluid(region)
    install: bool = True  # False: Fluid is already installed in the cluster
    depends_on: Sequence[pulumi.Resource] = ()  # e.g. the model import: warm the cache after it


@dataclass(frozen=True)
class WorkerPlan:
    replicas: int
    quota_gib: int
    cpu: int
    memory_gib: int


def plan_workers(cache_gib: int, worker_cache_gib: int) -> WorkerPlan:
    """Fewest workers whose memory tiers hold the cache, each within ACS's CPU:memory ratio."""
    if cache_gib <= 0 or worker_cache_gib <= 0:
        raise ValueError(f"cache sizes must be positive, got {cache_gib} and {worker_cache_gib}")
    replicas = sizing.fluid_workers(cache_gib, worker_cache_gib)
    quota = math.ceil(cache_gib / replicas)
    memory = quota + WORKER_OVERHEAD_GIB
    if memory > MAX_WORKER_MEMORY_GIB:
        raise ValueError(
            f"worker_cache_gib {worker_cache_gib} needs {memory} GiB per worker; "
            f"at most {MAX_WORKER_MEMORY_GIB - WORKER_OVERHEAD_GIB} fits"
        )
    cpu = next(c for c in WORKER_CPUS if c * MAX_MEMORY_PER_CPU_GIB >= memory)
    return WorkerPlan(replicas=replicas, quota_gib=quota, cpu=cpu, memory_gib=memory)


class FluidCache(pulumi.ComponentResource):
    claim: pulumi.Output[str]  # the PVC Fluid creates for the Dataset (same name, same namespace)
    dataset: k8s.apiextensions.CustomResource
    dataload: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: FluidCacheArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:FluidCache", name, None, opts)
        if args.credentials_secret is None:
            raise ValueError("Fluid reads OSS with the AccessKey Secret; use OssModelStore with auth 'access-key'")
        _check_path("prefix", args.prefix)
        if args.preload_path is not None:
            _check_path("preload_path", args.preload_path)
        workers = plan_workers(args.cache_gib, args.worker_cache_gib)
        needs: list[pulumi.Resource] = []
        if args.install:
            chart = args.chart or ack_fluid(args.region)
            needs.append(
                k8s.helm.v3.Release(
                    f"{name}-release",
                    name=chart.release_name,
                    chart=chart.chart,
                    version=chart.version,
                    repository_opts={"repo": chart.repo} if chart.repo else None,
                    namespace=chart.namespace,
                    create_namespace=True,
                    values=dict(chart.values),
                    timeout=600,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        in_fluid = pulumi.ResourceOptions(parent=self, depends_on=needs)  # the chart brings the CRDs

        dataset_name = _dns_label(name)
        meta = {"name": dataset_name, "namespace": args.namespace}
        self.dataset = k8s.apiextensions.CustomResource(
            f"{name}-dataset",
            api_version=API_VERSION,
            kind="Dataset",
            metadata=meta,
            spec=dataset_spec(args),
            opts=in_fluid,
        )
        # A JindoRuntime serves the Dataset of the same name.
        runtime = k8s.apiextensions.CustomResource(
            f"{name}-runtime",
            api_version=API_VERSION,
            kind="JindoRuntime",
            metadata=meta,
            spec=runtime_spec(args, workers),
            opts=in_fluid,
        )
        self.dataload = k8s.apiextensions.CustomResource(
            f"{name}-preload",
            api_version=API_VERSION,
            kind="DataLoad",
            metadata={"name": f"{dataset_name}-preload", "namespace": args.namespace},
            spec=dataload_spec(args, object_name(self.dataset)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*needs, self.dataset, runtime, *args.depends_on]),
        )
        self.claim = object_name(self.dataset)
        self.register_outputs({"claim": self.claim, "workers": workers.replicas})


def dataset_spec(args: FluidCacheArgs) -> dict:
    """The bucket prefix mounted at the Dataset's root (`path: /`: no extra directory level)."""
    secret = args.credentials_secret
    return {
        "accessModes": ["ReadOnlyMany"],
        "placement": "Shared",
        "mounts": [
            {
                "name": "models",
                "mountPoint": pulumi.Output.concat("oss://", args.bucket, f"/{args.prefix}/"),
                "path": "/",
                "options": {"fs.oss.endpoint": internal_endpoint(args.region)},
                "encryptOptions": [
                    {"name": "fs.oss.accessKeyId", "valueFrom": {"secretKeyRef": {"name": secret, "key": "akId"}}},
                    {
                        "name": "fs.oss.accessKeySecret",
                        "valueFrom": {"secretKeyRef": {"name": secret, "key": "akSecret"}},
                    },
                ],
            }
        ],
    }


def runtime_spec(args: FluidCacheArgs, workers: WorkerPlan) -> dict:
    """Workers cache in memory (/dev/shm); pod networking, as serverless pods have no host network."""
    labels = dict(args.pod_labels)
    amount = {"cpu": str(workers.cpu), "memory": f"{workers.memory_gib}Gi"}
    return {
        "replicas": workers.replicas,
        "networkmode": "ContainerNetwork",
        "master": {"podMetadata": {"labels": labels}},
        "worker": {
            "podMetadata": {"labels": labels, "annotations": dict(args.worker_annotations)},
            "resources": {"requests": amount, "limits": amount},
        },
        "tieredstore": {
            "levels": [
                {
                    "mediumtype": "MEM",
                    "path": "/dev/shm",
                    "volumeType": "emptyDir",
                    "quota": f"{workers.quota_gib}Gi",
                    "high": CACHE_HIGH_WATERMARK,
                    "low": CACHE_LOW_WATERMARK,
                }
            ]
        },
    }


def dataload_spec(args: FluidCacheArgs, dataset: pulumi.Input[str]) -> dict:
    spec: dict = {"dataset": {"name": dataset, "namespace": args.namespace}, "loadMetadata": True}
    if args.preload_path is not None:
        spec["target"] = [{"path": f"/{args.preload_path}", "replicas": 1}]
    return spec


def _check_path(what: str, path: str) -> None:
    if not path or path.startswith("/") or path.endswith("/") or ".." in path.split("/"):
        raise ValueError(f"{what} must be a relative object path like 'models', got {path!r}")


def _dns_label(name: str) -> str:
    """Fluid names Services and the PVC after the Dataset: a DNS-1035 label (starts with a letter)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not label[:1].isalpha():
        label = "d-" + label
    return label[:63].rstrip("-")
