"""A small ECS host in the VPC with kubectl and a kubeconfig for the cluster's private endpoint.

The kubeconfig never passes through Pulumi: a kubeconfig with RSA-2048 certificates is about 6 KB, more
than an OOS encrypted parameter holds (CreateSecretParameter: Value 1-4096 characters; audit D2), and it
would sit in state and command history. Instead the jump host's own RAM role may call
cs:DescribeClusterUserKubeconfig on this one cluster, and cs.KubernetesPermission gives that role the
cluster's `admin` RBAC role (the kubeconfig returned belongs to the caller). A Cloud Assistant command
(no secret in it) runs the fetch once, with PrivateIpAddress=true, so `pulumi up` ends only once kubectl
on the jump host gets in; a daily timer renews the three-day credential. This also gives the private
endpoint, whatever `cluster.publicEndpoint` says, and no new credential per `pulumi up` (audit m2).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.cloud_assistant import run_once
from components.alibaba.ecs_host import linux_host
from components.alibaba.host_scripts import PIP_INDEX_URL, write_file
from components.alibaba.instance_role import InstanceRole, InstanceRoleArgs, account_id
from components.shipped_scripts import body, script
from core import versions

VALID_MINUTES = 4320  # DescribeClusterUserKubeconfig TemporaryDurationMinutes: 15-4320; renewed daily
COMMAND_TIMEOUT_MINUTES = 20  # user-data (apt, kubectl, pip) plus the fetch
CLUSTER_ROLE = "admin"  # cs.KubernetesPermission predefined role: Compute Nest's ACS jump host is the admin's


@dataclass(frozen=True)
class JumpHostArgs:
    region: str
    instance_type: str
    image_id: str
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    cluster_id: pulumi.Input[str]
    kubectl_minor: str  # e.g. "1.33": match the cluster (kubectl supports one minor version of skew)
    public_bandwidth_mbps: int = 0  # 0: no public address (use Workbench / Cloud Assistant)
    key_pair: Optional[str] = None
    tags: Mapping[str, str] = field(default_factory=dict)


def render_setup(kubectl_minor: str) -> str:
    """User-data: kubectl, the ACK SDK, the fetcher and its renewal timer; no secret, no cluster id."""
    header = "\n".join(
        [
            "#!/bin/bash",
            f"KUBECTL_MINOR={shlex.quote(kubectl_minor)}",
            f"PIP_INDEX_URL={shlex.quote(PIP_INDEX_URL)}",
            f"CS_SDK_VERSION={shlex.quote(versions.ACK_CS_SDK.value)}",
            f"CREDENTIALS_SDK_VERSION={shlex.quote(versions.ALIBABA_CREDENTIALS_SDK.value)}",
            "",
        ]
    )
    files = "".join(
        [
            write_file("/usr/local/bin/llm-kubeconfig", script("llm-kubeconfig.py"), "0755"),
            write_file("/etc/systemd/system/llm-kubeconfig.service", script("llm-kubeconfig.service"), "0644"),
            write_file("/etc/systemd/system/llm-kubeconfig.timer", script("llm-kubeconfig.timer"), "0644"),
        ]
    )
    return header + files + body("jump-host-setup.sh")


def render_kubeconfig_install(cluster_id: str, region: str, role_name: str) -> str:
    header = "\n".join(
        [
            "#!/bin/bash",
            f"CLUSTER_ID={shlex.quote(cluster_id)}",
            f"REGION={shlex.quote(region)}",
            f"ROLE_NAME={shlex.quote(role_name)}",
            f"VALID_MINUTES={VALID_MINUTES}",
            f"TIMEOUT_SECONDS={COMMAND_TIMEOUT_MINUTES * 60}",
            "",
        ]
    )
    return header + body("kubeconfig-install.sh")


def kubeconfig_statements(region: str, account: str, cluster_id: str) -> list[dict]:
    """Fetch this cluster's kubeconfig (and read its details, which RAM's read-only check asks for)."""
    return [
        {
            "Effect": "Allow",
            "Action": ["cs:DescribeClusterUserKubeconfig", "cs:DescribeClusterDetail"],
            "Resource": [f"acs:cs:{region}:{account}:cluster/{cluster_id}"],
        }
    ]


class JumpHost(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    public_ip: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: JumpHostArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:JumpHost", name, None, opts)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
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
        statements = pulumi.Output.all(account_id(self), args.cluster_id).apply(
            lambda v: kubeconfig_statements(args.region, v[0], v[1])
        )
        role = InstanceRole(
            f"{name}-kubectl",
            InstanceRoleArgs(
                instance_id=instance.id,
                statements=statements,
                description="Lets the jump host fetch its own kubeconfig for one cluster",
                tags=tags,
            ),
            opts=child,
        )
        # The kubeconfig DescribeClusterUserKubeconfig returns is the caller's: give the role RBAC. This
        # overwrites the uid's earlier grants, harmless for a role of its own.
        permission = alicloud.cs.KubernetesPermission(
            f"{name}-kubectl",
            uid=role.role_id,
            permissions=[
                {"cluster": args.cluster_id, "role_type": "cluster", "role_name": CLUSTER_ROLE, "is_ram_role": True}
            ],
            opts=child,
        )
        script = pulumi.Output.all(args.cluster_id, role.role_name).apply(
            lambda v: render_kubeconfig_install(v[0], args.region, v[1])
        )
        run_once(
            f"{name}-kubeconfig",
            script=script,
            instance_id=instance.id,
            timeout_seconds=COMMAND_TIMEOUT_MINUTES * 60,
            wait_minutes=COMMAND_TIMEOUT_MINUTES + 5,
            description="Fetch the cluster kubeconfig for root with the jump host's RAM role",
            parent=self,
            depends_on=[*role.attached, permission],
        )
        self.instance_id = instance.id
        self.private_ip = instance.private_ip
        self.public_ip = instance.public_ip if args.public_bandwidth_mbps else None
        self.register_outputs({"instance_id": instance.id, "private_ip": instance.private_ip})
