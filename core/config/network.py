"""`network` and `cluster`: the VPC address plan (Alibaba targets) and the managed cluster's API and nodes.

The acs/ack/ack-edge plan: node vSwitches are network.vswitchCidr and the next block of its size (two
zones); Terway pod vSwitches are the VPC's last two quarters; Services get network.serviceCidr, apart
from the VPC.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core.config.placement import ZONE
from core.config.problems import Problems
from core.config.schema import Cidr, EcsInstanceType, Flag, Group, Int, matches, option, within
from core.nat_egress import MAX_NAT_MBPS, PER_EIP_MAX_MBPS
from core.targets import ACK_FAMILY, ALIBABA, GKE, MANAGED_ALIBABA

Zone = Annotated[str, matches(ZONE, "an Alibaba Cloud zone id like cn-hangzhou-i")]
NODE_IMAGE_TYPES = ("AliyunLinux3", "AliyunLinux3ContainerOptimized", "ContainerOS", "Ubuntu")


class NetworkConfig(Group):
    """The VPC this program creates on Alibaba Cloud."""

    TARGETS = ALIBABA
    vpc_cidr: Cidr = option("192.168.0.0/16", "CIDR of the VPC.")
    vswitch_cidr: Cidr = option("192.168.0.0/24", "CIDR of the (first) vSwitch, inside vpcCidr.")
    nat_bandwidth_mbps: Annotated[Int, within(1, MAX_NAT_MBPS, "Mbit/s")] = option(
        PER_EIP_MAX_MBPS,
        "Bandwidth of the NAT gateway: weights and images come in through it, and every readiness timeout and "
        "Job deadline is derived from it (core/durations.py). One EIP carries up to 200 Mbit/s; above that the "
        "NAT gets one EIP per 200 Mbit/s (core/nat_egress.py), each one of the account's EIPs (20 by default).",
    )
    nat_billing: Literal["traffic", "bandwidth"] = option(
        "traffic",
        "traffic: pay-by-traffic EIPs, billed per GB sent (inbound is free); bandwidth: billed per Mbit/s and "
        "hour (above 200 Mbit/s one shared bandwidth package of the whole bandwidth).",
    )
    service_cidr: Cidr = option(
        "172.16.0.0/16", "CIDR of Kubernetes Services; apart from vpcCidr.", targets=MANAGED_ALIBABA
    )
    zones: tuple[Zone, ...] = option(
        (),
        "The two zones of the cluster's vSwitches; empty: the first two found.",
        targets=MANAGED_ALIBABA,
        example=["cn-hangzhou-i", "cn-hangzhou-j"],
    )


class ClusterConfig(Group):
    """The managed cluster: version, API endpoint, and (ack, ack-edge) the cloud node pools and logs."""

    TARGETS = MANAGED_ALIBABA
    kubernetes_version: Optional[
        Annotated[str, matches(r"1\.\d+\.\d+-aliyun\.\d+", "an ACK version string like 1.33.3-aliyun.1")]
    ] = option(None, "Kubernetes version; empty: the newest at creation.", example="1.33.3-aliyun.1")
    public_endpoint: Flag = option(
        True,
        "Give the API server a public endpoint so `pulumi up` works from outside the VPC (acs, ack, ack-edge: "
        "it answers only cluster.apiCidrs); false: the API server is reachable inside the VPC only.",
    )
    api_cidrs: tuple[Cidr, ...] = option(
        (),
        "CIDRs allowed to reach the cluster's API server (where pulumi, kubectl and CI run; on ack-edge also the "
        "edge nodes' egress); required on gke, and on acs/ack/ack-edge while cluster.publicEndpoint is true. "
        "0.0.0.0/0 opens it to any address (guarded by credentials only).",
        targets=(GKE, *MANAGED_ALIBABA),
        example=["203.0.113.0/24"],
    )
    node_image_type: Literal["AliyunLinux3", "AliyunLinux3ContainerOptimized", "ContainerOS", "Ubuntu"] = option(
        "AliyunLinux3", "OS image type of the cloud node pools.", targets=ACK_FAMILY
    )
    system_node_instance_type: EcsInstanceType = option(
        "ecs.g7.xlarge",
        "Instance type of the two-node system pool (system pods, model import, benchmark).",
        targets=ACK_FAMILY,
    )
    sls_logging: Flag = option(False, "Collect the serving pods' logs into SLS (logtail-ds).", targets=ACK_FAMILY)


@dataclass(frozen=True)
class ClusterNetwork:
    """acs, ack, ack-edge: the cluster's zones, address plan and API endpoint."""

    zones: tuple[str, ...]  # empty: looked up at deploy time
    node_vswitch_cidrs: tuple[str, str]
    pod_vswitch_cidrs: tuple[str, str]
    service_cidr: str
    kubernetes_version: Optional[str]
    public_endpoint: bool
    # Who may reach the API server besides the VPC and ACK's control plane: an ACL on its CLB listener
    # (components/alibaba/api_server_acl.py). Empty (private endpoint: the VPC only) or 0.0.0.0/0: no ACL.
    api_cidrs: tuple[str, ...] = ()


def check_network(config: NetworkConfig, problems: Problems) -> bool:
    """The vSwitch lies in the VPC; False when it does not (the cluster plan is then not derived)."""
    if not ipaddress.IPv4Network(config.vswitch_cidr).subnet_of(ipaddress.IPv4Network(config.vpc_cidr)):
        problems.add(
            "network.vswitchCidr",
            config.vswitch_cidr,
            f"must be a CIDR inside network.vpcCidr ({config.vpc_cidr})",
            problems.set_command("network.vswitchCidr", "192.168.0.0/24"),
        )
        return False
    return True


def resolve_cluster_network(
    network: NetworkConfig, cluster: ClusterConfig, problems: Problems, target: str = ""
) -> Optional[ClusterNetwork]:
    if cluster.public_endpoint and not cluster.api_cidrs:
        # Private by default: the public endpoint exists so that Pulumi can run outside the VPC, and then it
        # answers only the listed networks (docs/security.md).
        edge = " and the edge nodes' egress (they join over the internet)" if target == "ack-edge" else ""
        problems.add(
            "cluster.apiCidrs",
            None,
            "the API server's public endpoint needs the networks that may reach it: where pulumi, kubectl and CI "
            f"run{edge}; 0.0.0.0/0 opens it to any address. Or set cluster.publicEndpoint false and run Pulumi "
            "inside the VPC",
            f"{problems.set_command('cluster.apiCidrs', ['<your public address>/32'])}, or "
            f"{problems.set_command('cluster.publicEndpoint', False)}",
        )
    vpc = ipaddress.IPv4Network(network.vpc_cidr)
    first = ipaddress.IPv4Network(network.vswitch_cidr)
    zones = network.zones
    if zones and (len(zones) != 2 or zones[0] == zones[1]):
        problems.add(
            "network.zones",
            list(zones),
            "must name exactly two different zones, or be empty to choose them",
            problems.set_command("network.zones", ["cn-hangzhou-i", "cn-hangzhou-j"]),
        )
    service = ipaddress.IPv4Network(network.service_cidr)
    if service.overlaps(vpc):
        problems.add(
            "network.serviceCidr",
            network.service_cidr,
            f"must be a CIDR outside the VPC (overlaps network.vpcCidr {vpc})",
            problems.set_command("network.serviceCidr", "172.16.0.0/16"),
        )
    if vpc.prefixlen > 20:
        problems.add(
            "network.vpcCidr",
            network.vpc_cidr,
            "needs a VPC of /20 or larger: its last half holds the pod vSwitches",
            problems.set_command("network.vpcCidr", "192.168.0.0/16"),
        )
        return None
    second = ipaddress.IPv4Network((int(first.network_address) + first.num_addresses, first.prefixlen))
    quarters = list(vpc.subnets(prefixlen_diff=2))
    if (
        not (first.subnet_of(quarters[0]) or first.subnet_of(quarters[1]))
        or not second.subnet_of(vpc)
        or second.overlaps(quarters[2])
    ):
        problems.add(
            "network.vswitchCidr",
            network.vswitch_cidr,
            f"is used with the next block ({second}) for the "
            f"nodes; both must lie in the first half of {vpc} (the second half holds the pod vSwitches)",
            problems.set_command("network.vswitchCidr", str(next(vpc.subnets(new_prefix=24)))),
        )
    return ClusterNetwork(
        zones=tuple(zones),
        node_vswitch_cidrs=(str(first), str(second)),
        pod_vswitch_cidrs=(str(quarters[2]), str(quarters[3])),
        service_cidr=network.service_cidr,
        kubernetes_version=cluster.kubernetes_version,
        public_endpoint=cluster.public_endpoint,
        api_cidrs=tuple(cluster.api_cidrs),
    )
