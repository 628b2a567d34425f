"""`gpuNodes`, `ack` and `ackEdge`: the GPU node pool (ack, gke), spot GPU nodes (ack), and ACK Edge's IDC-first
bursting onto virtual nodes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core.catalog import InstanceType, instance_types_with
from core.config.problems import Problems
from core.config.scaling import Autoscaling
from core.config.schema import Cidr, EcsInstanceType, Flag, Group, Int, matches, option, within
from core.targets import ACK, ACK_EDGE, GKE

MAX_ECI_SPECS = 5  # k8s.aliyun.com/eci-use-specs takes up to five types (ECI annotation reference)
# ACK node pools scale up to 1000 nodes (ESS scaling group MaxSize); a GKE node pool holds up to 1000 nodes
# per zone (GKE quotas and limits).
MAX_NODES = 1000
SYSTEM_NODES = 2  # the small CPU pool, one node per zone: system pods, the model import and the benchmark
SYSTEM_DISK_CATEGORY = "cloud_essd"  # its disks are small: the fastest category costs little


class GpuNodesConfig(Group):
    """The GPU node pool: a fixed size (max empty or equal to min) or autoscaled between min and max."""

    TARGETS = (ACK, GKE)
    min: Annotated[Int, within(0, MAX_NODES, "nodes")] = option(1, "Fewest GPU nodes (0: none while idle, ack only).")
    max: Optional[Annotated[Int, within(1, MAX_NODES, "nodes")]] = option(
        None, "Most GPU nodes; empty: min (a fixed pool). One serving pod per node on ack.", example=3
    )

    @property
    def maximum(self) -> int:
        return self.max if self.max is not None else max(self.min, 1)


class AckConfig(Group):
    TARGETS = (ACK,)
    spot_instances: Flag = option(False, "GPU nodes as spot (preemptible) instances.")


class AckEdgeConfig(Group):
    TARGETS = (ACK_EDGE,)
    node_pool_id: Optional[Annotated[str, matches(r"np[a-z0-9]{6,64}", "a node pool id like np1a2b3c4d5e6f")]] = option(
        None, "The edge node pool the IDC GPU machines joined (required unless clusterOnly).", example="np1a2b3c4d5e6f"
    )
    cluster_only: Flag = option(
        False, "First run: create only the network and cluster, so the edge node pool can be made in it."
    )
    pod_cidr: Cidr = option("172.20.0.0/16", "Pod CIDR (Flannel); apart from the VPC, Service and IDC networks.")
    virtual_node_unit: Literal["eci", "acs"] = option("eci", "Cloud capacity when the IDC is full: eci or acs.")
    cloud_max_pods: Annotated[Int, within(0, 100, "pods")] = option(
        2, "Most serving pods on virtual nodes at once (0: IDC only)."
    )
    eci_instance_types: tuple[EcsInstanceType, ...] = option(
        (),
        f"eci: GPU instance types for cloud pods (up to {MAX_ECI_SPECS}); empty: catalog types with the pod's GPUs.",
        example=["ecs.gn6e-c12g1.3xlarge"],
    )
    # Audit D11: IDC nodes reach VPC-only endpoints only over Express Connect or VPN (Alibaba's ACK Edge guide
    # assumes Express Connect), and RRSA for OSS volumes on IDC nodes and ECI is not proven. One serving workload mounts
    # one volume, so the endpoint is per stack, not per unit (a ResourcePolicy unit adds only labels and
    # annotations to a pod).
    oss_endpoint: Literal["internal", "public"] = option(
        "internal",
        "OSS endpoint of the serving volumes: internal (the IDC reaches the VPC over Express Connect or VPN, as "
        "Alibaba's ACK Edge guide requires) or public (oss-<region>.aliyuncs.com over the internet; traffic is "
        "billed).",
    )
    oss_auth: Literal["access-key", "rrsa"] = option(
        "access-key",
        "How the OSS volumes authenticate: access-key (a bucket-only RAM user's key in a Secret, as Alibaba's "
        "ACK Edge guide does) or rrsa (no long-lived key; not proven on IDC nodes or ECI).",
    )


@dataclass(frozen=True)
class GpuNodePool:
    """ack: the autoscaling GPU node pool; one serving pod per node (it takes all the node's GPUs)."""

    instance_type: str
    min_nodes: int
    max_nodes: int
    spot: bool


@dataclass(frozen=True)
class EdgeBurst:
    """ack-edge: IDC first (the existing edge node pool), then at most cloud_max_pods on virtual nodes."""

    node_pool_id: str  # empty only with cluster_only
    cluster_only: bool
    unit: str  # eci | acs
    cloud_max_pods: int
    eci_instance_types: tuple[str, ...]
    pod_cidr: str
    oss_endpoint: str = "internal"
    oss_auth: str = "access-key"


@dataclass(frozen=True)
class AckSettings:
    autoscaling: Autoscaling
    node_image_type: str  # both targets' cloud node pools
    system_instance_type: str  # the small CPU pool: system pods, the model import, the benchmark
    sls_logging: bool = False


def resolve_gpu_pool(
    nodes: GpuNodesConfig,
    ack: AckConfig,
    instance: Optional[InstanceType],
    autoscaling: Autoscaling,
    problems: Problems,
) -> GpuNodePool:
    low, high = nodes.min, nodes.maximum
    if low > high:
        problems.add(
            "gpuNodes.min",
            low,
            f"is larger than gpuNodes.max ({high})",
            f"{problems.set_command('gpuNodes.min', high)}, or raise gpuNodes.max",
        )
    elif high < autoscaling.max_replicas:
        problems.add(
            "gpuNodes.max",
            high,
            f"holds fewer serving pods than scaling.maxReplicas "
            f"({autoscaling.max_replicas}); each pod takes one GPU node",
            problems.set_command("gpuNodes.max", autoscaling.max_replicas),
        )
    return GpuNodePool(
        instance_type=instance.name if instance else "", min_nodes=low, max_nodes=high, spot=ack.spot_instances
    )


def resolve_edge(
    config: AckEdgeConfig,
    gpus_per_pod: Optional[int],
    gpu_kind: str,
    service_cidr: str,
    vpc_cidr: str,
    problems: Problems,
) -> EdgeBurst:
    pool = config.node_pool_id or ""
    if not pool and not config.cluster_only:
        problems.add(
            "ackEdge.nodePoolId",
            None,
            "is required: the id of the edge node pool the IDC GPU machines "
            "joined (the provider cannot create one for on-prem machines)",
            f"first run: {problems.set_command('ackEdge.clusterOnly', True)} && pulumi up (cluster only); "
            "create the edge node pool in the ACK console (docs/targets/ack-edge.md), then "
            f"{problems.set_command('ackEdge.nodePoolId', 'np...')} && "
            f"{problems.set_command('ackEdge.clusterOnly', False)} && pulumi up",
        )
    specs = tuple(config.eci_instance_types)
    if len(specs) > MAX_ECI_SPECS:
        problems.add(
            "ackEdge.eciInstanceTypes",
            list(specs),
            f"must be at most {MAX_ECI_SPECS} ECS instance types (the eci-use-specs annotation takes five)",
            problems.set_command("ackEdge.eciInstanceTypes", list(specs[:MAX_ECI_SPECS])),
        )
    if config.virtual_node_unit == "eci" and not specs and gpus_per_pod:
        specs = tuple(t.name for t in instance_types_with(gpu_kind) if t.gpu_count == gpus_per_pod)[:MAX_ECI_SPECS]
        if not specs:
            problems.add(
                "ackEdge.eciInstanceTypes",
                [],
                f"no catalog ECS type has {gpus_per_pod}x {gpu_kind} for the cloud pods",
                problems.set_command("ackEdge.eciInstanceTypes[0]", "ecs.gn7i-c16g1.4xlarge"),
            )
    network = ipaddress.ip_network(config.pod_cidr)
    clash = [c for c in (service_cidr, vpc_cidr) if network.overlaps(ipaddress.ip_network(c))]
    if clash:
        problems.add(
            "ackEdge.podCidr",
            config.pod_cidr,
            f"must be a CIDR apart from the VPC and Service CIDRs (overlaps {clash[0]})",
            problems.set_command("ackEdge.podCidr", "172.20.0.0/16"),
        )
    return EdgeBurst(
        node_pool_id=pool,
        cluster_only=config.cluster_only,
        unit=config.virtual_node_unit,
        cloud_max_pods=config.cloud_max_pods,
        eci_instance_types=specs,
        pod_cidr=config.pod_cidr,
        oss_endpoint=config.oss_endpoint,
        oss_auth=config.oss_auth,
    )
