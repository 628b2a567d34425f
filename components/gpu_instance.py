"""One GPU ECS instance that downloads the model, runs the engine, and is only done when serving.

`pulumi up` ends when a Cloud Assistant command (components.secret_command) confirms /health and
API-key enforcement on the host. The API key travels as an OOS encrypted parameter referenced by
that command, never in user-data.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_alicloud as alicloud

from components.host_scripts import render_ready_command
from components.secret_command import SecretCommand, SecretCommandArgs


@dataclass(frozen=True)
class GpuInstanceArgs:
    instance_type: str
    image_id: str
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    user_data: str
    api_key: pulumi.Output[str]  # secret
    api_key_env: str
    api_port: int
    readiness_timeout_minutes: int
    disk_category: str = "cloud_essd"
    system_disk_gib: int = 100
    public_bandwidth_mbps: int = 0  # 0: no public address
    key_pair: Optional[str] = None
    deletion_protection: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


class GpuInstance(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    public_ip: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: GpuInstanceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:index:GpuInstance", name, None, opts)
        tags = dict(args.tags)
        public = args.public_bandwidth_mbps > 0

        instance = alicloud.ecs.Instance(
            f"{name}-instance",
            instance_name=name, host_name=name, instance_type=args.instance_type, image_id=args.image_id,
            vswitch_id=args.vswitch_id, security_groups=[args.security_group_id],
            instance_charge_type="PostPaid",
            system_disk_category=args.disk_category, system_disk_size=args.system_disk_gib,
            internet_charge_type="PayByTraffic", internet_max_bandwidth_out=args.public_bandwidth_mbps,
            key_name=args.key_pair, user_data=base64.b64encode(args.user_data.encode()).decode(),
            http_tokens="required", deletion_protection=args.deletion_protection, tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.deletion_protection,
                # The image lookup moves to newer builds over time; that must not replace a serving host.
                ignore_changes=["image_id"],
                # cloud-init runs user-data once per instance, so new model or engine settings need a new
                # host; Pulumi creates it before deleting the old one, which serves until then. A protected
                # (deletionProtection) host must be unprotected first.
                replace_on_changes=["user_data"],
                custom_timeouts=pulumi.CustomTimeouts(create="30m", delete="20m")))

        script = render_ready_command(api_port=args.api_port, api_key_env=args.api_key_env,
                                      secret_parameter=f"{name}-api-key",
                                      timeout_seconds=args.readiness_timeout_minutes * 60)
        self.ready = SecretCommand(f"{name}-ready", SecretCommandArgs(
            instance_id=instance.id, secret=args.api_key, script=script, parameter_name=f"{name}-api-key",
            timeout_minutes=args.readiness_timeout_minutes, tags=tags,
            description="Install the API key, start the engine, wait for /health"), opts=pulumi.ResourceOptions(parent=self))

        self.instance_id = instance.id
        self.private_ip = instance.private_ip
        self.public_ip = instance.public_ip if public else None
        self.register_outputs({"instance_id": instance.id, "private_ip": instance.private_ip,
                               "ready": self.ready.status})
