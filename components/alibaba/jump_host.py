"""A small ECS host in the VPC with kubectl and the cluster's kubeconfig, as the reference provides.

kubectl comes from user-data (no secret). The kubeconfig is a secret: it is delivered by a Cloud
Assistant command that reads it from an OOS encrypted parameter (components.alibaba.secret_command), and is
delivered again whenever `pulumi up` fetches fresh cluster credentials.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pulumi

from components.alibaba.ecs_host import linux_host
from components.alibaba.host_scripts import secret_reference
from components.alibaba.secret_command import SecretCommand, SecretCommandArgs

SCRIPTS = Path(__file__).parent.parent / "scripts"


@dataclass(frozen=True)
class JumpHostArgs:
    instance_type: str
    image_id: str
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    kubeconfig: pulumi.Output[str]  # secret
    kubectl_minor: str  # e.g. "1.33": match the cluster (kubectl supports one minor version of skew)
    public_bandwidth_mbps: int = 0  # 0: no public address (use Workbench / Cloud Assistant)
    key_pair: Optional[str] = None
    tags: Mapping[str, str] = field(default_factory=dict)


def render_setup(kubectl_minor: str) -> str:
    body = (SCRIPTS / "jump-host-setup.sh").read_text().split("\n", 1)[1]
    return f"#!/bin/bash\nKUBECTL_MINOR={shlex.quote(kubectl_minor)}\n{body}"


def render_kubeconfig_install(parameter_name: str) -> str:
    body = (SCRIPTS / "kubeconfig-install.sh").read_text().split("\n", 1)[1]
    return f"#!/bin/bash\nKUBECONFIG_VALUE='{secret_reference(parameter_name)}'\n{body}"


class JumpHost(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    public_ip: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: JumpHostArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:JumpHost", name, None, opts)
        tags = dict(args.tags)
        instance = linux_host(
            name,
            self,
            instance_type=args.instance_type,
            image_id=args.image_id,
            vswitch_id=args.vswitch_id,
            security_group_id=args.security_group_id,
            user_data=render_setup(args.kubectl_minor),
            disk_category="cloud_essd",
            disk_gib=40,
            public_bandwidth_mbps=args.public_bandwidth_mbps,
            key_pair=args.key_pair,
            tags=tags,
        )
        parameter = f"{name}-kubeconfig"
        SecretCommand(
            f"{name}-kubeconfig",
            SecretCommandArgs(
                instance_id=instance.id,
                secret=args.kubeconfig,
                script=render_kubeconfig_install(parameter),
                parameter_name=parameter,
                timeout_minutes=10,
                tags=tags,
                description="Install the cluster kubeconfig for root",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.instance_id = instance.id
        self.private_ip = instance.private_ip
        self.public_ip = instance.public_ip if args.public_bandwidth_mbps else None
        self.register_outputs({"instance_id": instance.id, "private_ip": instance.private_ip})
