"""Settings of the `ack` and `ack-edge` targets: GPU node pools, autoscaling, IDC-first bursting, logs.

core.settings.parse() reads the shared keys (model, placement, workload, cluster network) and hands
its reader here for the keys only these targets use; problems are collected with all the others.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional, Protocol

from core.catalog import InstanceType, instance_types_with

ACK_TARGETS = ("ack", "ack-edge")

# The metrics an HPA can scale on here, each with its default target (per pod, AverageValue):
# - vLLM's own queue: requests waiting for a slot; >0 for long means the engine is saturated.
# - ACK GPU monitoring's per-process SM utilisation in percent (the reference's arena --scale-metric).
QUEUE_METRIC = "vllm:num_requests_waiting"
GPU_METRIC = "DCGM_CUSTOM_PROCESS_SM_UTIL"
METRIC_DEFAULT_TARGETS = {QUEUE_METRIC: 5, GPU_METRIC: 50}
NODE_IMAGE_TYPES = ("AliyunLinux3", "AliyunLinux3ContainerOptimized", "ContainerOS", "Ubuntu")
VIRTUAL_UNITS = ("eci", "acs")
MAX_ECI_SPECS = 5  # k8s.aliyun.com/eci-use-specs takes up to five types
NODE_POOL_ID = re.compile(r"^np[a-z0-9]{6,64}$")
INSTANCE_TYPE = re.compile(r"^ecs\.[a-z0-9-]+\.[a-z0-9]+$")


class Reader(Protocol):
    def get(self, name: str): ...
    def problem(self, key: str, value: object, allowed: str, fix: str) -> None: ...


SYSTEM_NODES = 2  # the small CPU pool, one node per zone: system pods, the model import and the benchmark

@dataclass(frozen=True)
class GpuNodePool:
    """ack: the autoscaling GPU node pool; one serving pod per node (it takes all the node's GPUs)."""

    instance_type: str
    min_nodes: int
    max_nodes: int
    spot: bool


@dataclass(frozen=True)
class Autoscaling:
    """An HPA from llm:replicas to max_replicas on `metric` (None: a fixed llm:replicas, no HPA)."""

    metric: str
    target: int  # per pod: waiting requests, or SM utilisation percent
    min_replicas: int
    max_replicas: int
    scale_down_seconds: int

    @property
    def enabled(self) -> bool:
        return self.max_replicas > self.min_replicas


@dataclass(frozen=True)
class EdgeBurst:
    """ack-edge: IDC first (the existing edge node pool), then at most cloud_max_pods on virtual nodes."""

    node_pool_id: str  # empty only with cluster_only
    cluster_only: bool  # first run: network and cluster only; the edge node pool is made in it afterwards
    unit: str  # eci | acs
    cloud_max_pods: int
    eci_instance_types: tuple[str, ...]  # eci: what a pod may run as, cheapest first
    pod_cidr: str  # Flannel: IDC nodes get no VPC ENIs


@dataclass(frozen=True)
class AckSettings:
    autoscaling: Autoscaling
    node_image_type: str  # both targets' cloud node pools
    system_instance_type: str  # the small CPU pool: system pods, the model import, the benchmark
    gpu_pool: Optional[GpuNodePool] = None  # ack
    edge: Optional[EdgeBurst] = None  # ack-edge
    sls_logging: bool = False


def parse_ack(r: Reader, target: str, instance: Optional[InstanceType], gpus_per_pod: Optional[int],
              gpu_kind: str, engine: Optional[str], service_cidr: str, vpc_cidr: str) -> AckSettings:
    """`instance`: the GPU node type (ack); `gpus_per_pod`: the pod's GPUs (ack-edge, for ECI specs)."""
    autoscaling = _autoscaling(r, engine)
    pool = _gpu_pool(r, instance, autoscaling) if target == "ack" else None
    edge = _edge(r, gpus_per_pod, gpu_kind, service_cidr, vpc_cidr) if target == "ack-edge" else None
    image = r.get("ackNodeImageType")
    if image not in NODE_IMAGE_TYPES:
        r.problem("ackNodeImageType", image, f"must be one of {', '.join(NODE_IMAGE_TYPES)}",
                  "pulumi config set llm:ackNodeImageType AliyunLinux3")
    system = r.get("ackSystemNodeInstanceType")
    if not INSTANCE_TYPE.match(system):
        r.problem("ackSystemNodeInstanceType", system, "must be an ECS instance type like ecs.g7.xlarge",
                  "pulumi config set llm:ackSystemNodeInstanceType ecs.g7.xlarge")
    return AckSettings(autoscaling=autoscaling, node_image_type=image, system_instance_type=system, gpu_pool=pool,
                       edge=edge, sls_logging=r.get("slsLogging"))


def _autoscaling(r: Reader, engine: Optional[str]) -> Autoscaling:
    low, high = r.get("replicas"), r.get("maxReplicas")
    if high < low:
        r.problem("maxReplicas", high, f"must be at least llm:replicas ({low}), the fewest replicas the autoscaler keeps",
                  f"pulumi config set llm:maxReplicas {max(low, 1)} (equal to llm:replicas: no autoscaling)")
    metric = r.get("autoscalingMetric")
    if metric not in METRIC_DEFAULT_TARGETS:
        r.problem("autoscalingMetric", metric, f"unknown metric; allowed: {', '.join(METRIC_DEFAULT_TARGETS)}",
                  f"pulumi config set llm:autoscalingMetric {QUEUE_METRIC}")
    elif metric == QUEUE_METRIC and engine is not None and engine != "vllm" and high > low:
        r.problem("autoscalingMetric", metric, "is a vLLM metric; SGLang does not export it",
                  f"pulumi config set llm:autoscalingMetric {GPU_METRIC}")
    target = r.get("autoscalingTarget")
    if target < 0 or (metric == GPU_METRIC and target > 100):
        r.problem("autoscalingTarget", target, "must be 0 (the metric's default) or a positive value per pod "
                  "(GPU utilisation: at most 100)", "pulumi config set llm:autoscalingTarget 0")
    seconds = r.get("scaleDownStabilizationSeconds")
    if not 0 <= seconds <= 3600:
        r.problem("scaleDownStabilizationSeconds", seconds, "must be 0-3600 (the HPA limit)",
                  "pulumi config set llm:scaleDownStabilizationSeconds 600")
    return Autoscaling(metric=metric, target=target or METRIC_DEFAULT_TARGETS.get(metric, 1), min_replicas=low,
                       max_replicas=max(low, high), scale_down_seconds=seconds)


def _gpu_pool(r: Reader, instance: Optional[InstanceType], autoscaling: Autoscaling) -> GpuNodePool:
    low, high = r.get("ackGpuNodesMin"), r.get("ackGpuNodesMax")
    if low < 0 or high < 1:
        r.problem("ackGpuNodesMin" if low < 0 else "ackGpuNodesMax", low if low < 0 else high,
                  "node counts: min at least 0, max at least 1", "pulumi config set llm:ackGpuNodesMax 2")
    elif low > high:
        r.problem("ackGpuNodesMin", low, f"is larger than llm:ackGpuNodesMax ({high})",
                  f"pulumi config set llm:ackGpuNodesMin {high}, or raise llm:ackGpuNodesMax")
    elif high < autoscaling.max_replicas:
        r.problem("ackGpuNodesMax", high, f"holds fewer serving pods than llm:maxReplicas ({autoscaling.max_replicas}); "
                  "each pod takes one GPU node", f"pulumi config set llm:ackGpuNodesMax {autoscaling.max_replicas}")
    return GpuNodePool(instance_type=instance.name if instance else "", min_nodes=low, max_nodes=high,
                       spot=r.get("ackSpotInstances"))


def _edge(r: Reader, gpus_per_pod: Optional[int], gpu_kind: str, service_cidr: str, vpc_cidr: str) -> EdgeBurst:
    pool, cluster_only = r.get("edgeNodePoolId"), r.get("edgeClusterOnly")
    if not pool and not cluster_only:
        r.problem("edgeNodePoolId", "", "is required: the id of the edge node pool the IDC GPU machines joined "
                  "(the provider cannot create one for on-prem machines)",
                  "first run: pulumi config set llm:edgeClusterOnly true && pulumi up (cluster only); create the "
                  "edge node pool in the ACK console (README \"ack-edge\"), then pulumi config set "
                  "llm:edgeNodePoolId np... && pulumi config set llm:edgeClusterOnly false && pulumi up")
    elif pool and not NODE_POOL_ID.match(pool):
        r.problem("edgeNodePoolId", pool, "must be a node pool id like np1a2b3c4d5e6f", "copy it from the ACK console")
    unit = r.get("virtualNodeUnit")
    if unit not in VIRTUAL_UNITS:
        r.problem("virtualNodeUnit", unit, f"must be one of {', '.join(VIRTUAL_UNITS)}",
                  "pulumi config set llm:virtualNodeUnit eci")
    cloud_max = r.get("cloudMaxPods")
    if cloud_max < 0:
        r.problem("cloudMaxPods", cloud_max, "must be 0 (IDC only) or more", "pulumi config set llm:cloudMaxPods 2")
    specs = tuple(r.get("eciInstanceTypes"))
    bad = [s for s in specs if not INSTANCE_TYPE.match(s)]
    if bad or len(specs) > MAX_ECI_SPECS:
        r.problem("eciInstanceTypes", list(specs), f"must be at most {MAX_ECI_SPECS} ECS instance types",
                  "e.g. [\"ecs.gn6e-c12g1.3xlarge\"]")
    if unit == "eci" and not specs and gpus_per_pod:
        specs = tuple(t.name for t in instance_types_with(gpu_kind) if t.gpu_count == gpus_per_pod)[:MAX_ECI_SPECS]
        if not specs:
            r.problem("eciInstanceTypes", [], f"no catalog ECS type has {gpus_per_pod}x {gpu_kind} for the cloud pods",
                      "list the ECI GPU types to use, e.g. pulumi config set --path 'llm:eciInstanceTypes[0]' "
                      "ecs.gn7i-c16g1.4xlarge")
    pod_cidr = r.get("edgePodCidr")
    try:
        network = ipaddress.ip_network(pod_cidr, strict=True)
        clash = [c for c in (service_cidr, vpc_cidr) if _overlaps(network, c)]
        if clash:
            raise ValueError(f"overlaps {clash[0]}")
    except ValueError as exc:
        r.problem("edgePodCidr", pod_cidr, f"must be a CIDR apart from the VPC and Service CIDRs ({exc})",
                  "pulumi config set llm:edgePodCidr 172.20.0.0/16")
    return EdgeBurst(node_pool_id=pool, cluster_only=cluster_only, unit=unit, cloud_max_pods=cloud_max, eci_instance_types=specs,
                     pod_cidr=pod_cidr)


def _overlaps(network: ipaddress.IPv4Network | ipaddress.IPv6Network, other: str) -> bool:
    try:
        return network.overlaps(ipaddress.ip_network(other, strict=False))
    except ValueError:
        return False  # reported where that key is read
