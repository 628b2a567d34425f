"""VPC, vSwitches, NAT egress and the security group in front of the hosts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

from core.nat_egress import nat_eips


@dataclass(frozen=True)
class Subnet:
    """One vSwitch: `role` names it (e.g. "nodes-a") and keys Network.vswitch_ids."""

    role: str
    zone_id: str
    cidr: str


@dataclass(frozen=True)
class NetworkArgs:
    vpc_cidr: str
    subnets: Sequence[Subnet]  # the first one hosts the NAT gateway
    api_port: Optional[int] = None  # None: no host in the security group serves the API
    metrics_port: Optional[int] = None  # the gateway's GET /metrics: from the VPC only (a scraper), never public
    public_api_cidrs: Sequence[str] = ()  # empty: the API is reachable from inside the VPC only
    ssh_cidrs: Sequence[str] = ()  # empty: SSH closed
    nat_egress: bool = True  # hosts and pods without public addresses reach ModelScope and registries through NAT
    # The NAT's EIPs: everything public comes in through them (core/durations.py derives the deadlines from it).
    nat_bandwidth_mbps: int = 200
    nat_billing: str = "traffic"  # traffic: PayByTraffic EIPs; bandwidth: PayByBandwidth (above 200 one shared package)
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vswitch_ids: dict[str, pulumi.Output[str]]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:Network", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        vpc = alicloud.vpc.Network(f"{name}-vpc", vpc_name=name, cidr_block=args.vpc_cidr, tags=tags, opts=child)
        vswitches = {
            s.role: alicloud.vpc.Switch(
                f"{name}-vswitch" if i == 0 else f"{name}-vswitch-{s.role}",
                vswitch_name=f"{name}-{s.role}-{s.zone_id}",
                vpc_id=vpc.id,
                cidr_block=s.cidr,
                zone_id=s.zone_id,
                tags=tags,
                opts=child,
            )
            for i, s in enumerate(args.subnets)
        }
        group = alicloud.ecs.SecurityGroup(
            f"{name}-sg",
            security_group_name=name,
            vpc_id=vpc.id,
            tags=tags,
            description="LLM hosts: API from the VPC; public CIDRs and SSH only when configured",
            opts=child,
        )

        self.rules = []
        if args.api_port is not None:
            self.rules.append(self._allow(f"{name}-api-vpc", group, args.api_port, args.vpc_cidr, "API from the VPC"))
            self.rules += [
                self._allow(f"{name}-api-public-{i}", group, args.api_port, cidr, "public API")
                for i, cidr in enumerate(args.public_api_cidrs)
            ]
        if args.metrics_port is not None:
            self.rules.append(
                self._allow(f"{name}-metrics-vpc", group, args.metrics_port, args.vpc_cidr, "metrics from the VPC")
            )
        self.rules += [self._allow(f"{name}-ssh-{i}", group, 22, cidr, "SSH") for i, cidr in enumerate(args.ssh_cidrs)]
        if args.nat_egress:
            self._nat(name, vpc, list(vswitches.values()), tags)

        self.vpc_id, self.security_group_id = vpc.id, group.id
        self.vswitch_ids = {role: v.id for role, v in vswitches.items()}
        self.register_outputs({"vpc_id": vpc.id, "vswitch_ids": self.vswitch_ids, "security_group_id": group.id})

    @property
    def vswitch_id(self) -> pulumi.Output[str]:
        """The first vSwitch (single-host targets have only one)."""
        return next(iter(self.vswitch_ids.values()))

    def _allow(self, name: str, group, port: int, cidr: str, what: str):
        # In a VPC the NIC type is always "intranet"; internet sources are matched by their CIDR.
        return alicloud.ecs.SecurityGroupRule(
            name,
            security_group_id=group.id,
            type="ingress",
            ip_protocol="tcp",
            policy="accept",
            port_range=f"{port}/{port}",
            cidr_ip=cidr,
            nic_type="intranet",
            priority=1,
            description=what,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _nat(self, name: str, vpc, vswitches: list, tags: dict) -> None:
        """The NAT gateway and its EIPs (core/nat_egress.py): one EIP per 200 Mbit/s, all listed in every SNAT entry;
        billed by bandwidth, more than one share a package of the whole bandwidth."""
        child = pulumi.ResourceOptions(parent=self)
        nat = alicloud.vpc.NatGateway(
            f"{name}-nat",
            nat_gateway_name=name,
            vpc_id=vpc.id,
            vswitch_id=vswitches[0].id,
            nat_type="Enhanced",
            network_type="internet",
            payment_type="PayAsYouGo",
            internet_charge_type="PayByLcu",
            tags=tags,
            opts=child,
        )
        plan = nat_eips(self._args.nat_bandwidth_mbps, self._args.nat_billing)
        # The first EIP keeps the name it had when there was only one, so a stack that grows keeps it.
        suffixes = ["" if i == 0 else f"-{i + 1}" for i in range(plan.count)]
        eips = [
            alicloud.ecs.EipAddress(
                f"{name}-nat-eip{suffix}",
                address_name=f"{name}-nat{suffix}",
                bandwidth=str(mbps),
                internet_charge_type=plan.charge_type,
                payment_type="PayAsYouGo",
                tags=tags,
                opts=child,
            )
            for suffix, mbps in zip(suffixes, plan.bandwidths, strict=True)
        ]
        ready: list[pulumi.Resource] = []
        if plan.shared:
            package = alicloud.vpc.CommonBandwithPackage(
                f"{name}-nat-bandwidth",
                bandwidth_package_name=f"{name}-nat",
                bandwidth=str(plan.total_mbps),
                internet_charge_type="PayByBandwidth",
                tags=tags,
                opts=child,
            )
            ready += [
                alicloud.vpc.CommonBandwithPackageAttachment(
                    f"{name}-nat-bandwidth{suffix}",
                    bandwidth_package_id=package.id,
                    instance_id=eip.id,
                    bandwidth_package_bandwidth=str(mbps),
                    opts=child,
                )
                for suffix, eip, mbps in zip(suffixes, eips, plan.bandwidths, strict=True)
            ]
        ready += [
            alicloud.ecs.EipAssociation(
                f"{name}-nat-eip{suffix}", allocation_id=eip.id, instance_id=nat.id, instance_type="Nat", opts=child
            )
            for suffix, eip in zip(suffixes, eips, strict=True)
        ]
        snat_ips = pulumi.Output.all(*[eip.ip_address for eip in eips]).apply(",".join)
        self.snat_entries = [
            alicloud.vpc.SnatEntry(
                f"{name}-snat" if i == 0 else f"{name}-snat-{i}",
                snat_table_id=nat.snat_table_ids,
                source_vswitch_id=vswitch.id,
                snat_ip=snat_ips,
                eip_affinity=0,  # each connection picks an EIP: a download of several spreads over the pool
                snat_entry_name=f"{name}-{i}",
                opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
            )
            for i, vswitch in enumerate(vswitches)
        ]
