"""VPC, one vSwitch, NAT egress and the security group in front of the API."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_alicloud as alicloud


@dataclass(frozen=True)
class NetworkArgs:
    vpc_cidr: str
    vswitch_cidr: str
    zone_id: str
    api_port: int
    public_api_cidrs: Sequence[str] = ()  # empty: the API is reachable from inside the VPC only
    ssh_cidrs: Sequence[str] = ()  # empty: SSH closed
    nat_egress: bool = True  # hosts without a public address reach ModelScope and registries through NAT
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vswitch_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        vpc = alicloud.vpc.Network(f"{name}-vpc", vpc_name=name, cidr_block=args.vpc_cidr, tags=tags, opts=child)
        vswitch = alicloud.vpc.Switch(
            f"{name}-vswitch", vswitch_name=f"{name}-{args.zone_id}", vpc_id=vpc.id,
            cidr_block=args.vswitch_cidr, zone_id=args.zone_id, tags=tags, opts=child)
        group = alicloud.ecs.SecurityGroup(
            f"{name}-sg", security_group_name=name, vpc_id=vpc.id, tags=tags,
            description="LLM API: VPC always; public CIDRs and SSH only when configured", opts=child)

        self.rules = [self._allow(f"{name}-api-vpc", group, args.api_port, args.vpc_cidr, "API from the VPC")]
        self.rules += [self._allow(f"{name}-api-public-{i}", group, args.api_port, cidr, "public API")
                       for i, cidr in enumerate(args.public_api_cidrs)]
        self.rules += [self._allow(f"{name}-ssh-{i}", group, 22, cidr, "SSH") for i, cidr in enumerate(args.ssh_cidrs)]
        if args.nat_egress:
            self._nat(name, vpc, vswitch, tags)

        self.vpc_id, self.vswitch_id, self.security_group_id = vpc.id, vswitch.id, group.id
        self.register_outputs({"vpc_id": vpc.id, "vswitch_id": vswitch.id, "security_group_id": group.id})

    def _allow(self, name: str, group, port: int, cidr: str, what: str):
        # In a VPC the NIC type is always "intranet"; internet sources are matched by their CIDR.
        return alicloud.ecs.SecurityGroupRule(
            name, security_group_id=group.id, type="ingress", ip_protocol="tcp", policy="accept",
            port_range=f"{port}/{port}", cidr_ip=cidr, nic_type="intranet", priority=1, description=what,
            opts=pulumi.ResourceOptions(parent=self))

    def _nat(self, name: str, vpc, vswitch, tags: dict) -> None:
        child = pulumi.ResourceOptions(parent=self)
        nat = alicloud.vpc.NatGateway(
            f"{name}-nat", nat_gateway_name=name, vpc_id=vpc.id, vswitch_id=vswitch.id, nat_type="Enhanced",
            network_type="internet", payment_type="PayAsYouGo", internet_charge_type="PayByLcu", tags=tags, opts=child)
        eip = alicloud.ecs.EipAddress(
            f"{name}-nat-eip", address_name=f"{name}-nat", bandwidth="100", internet_charge_type="PayByTraffic",
            payment_type="PayAsYouGo", tags=tags, opts=child)
        binding = alicloud.ecs.EipAssociation(
            f"{name}-nat-eip", allocation_id=eip.id, instance_id=nat.id, instance_type="Nat", opts=child)
        alicloud.vpc.SnatEntry(
            f"{name}-snat", snat_table_id=nat.snat_table_ids, source_vswitch_id=vswitch.id, snat_ip=eip.ip_address,
            snat_entry_name=name, opts=pulumi.ResourceOptions(parent=self, depends_on=[binding]))
