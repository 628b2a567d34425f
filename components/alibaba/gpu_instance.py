"""One GPU ECS instance that downloads the model, runs the engine, and is only done when serving.

`pulumi up` ends when a Cloud Assistant command (components.alibaba.secret_command) confirms /health and
API-key enforcement on the host. The API key travels as an OOS encrypted parameter referenced by
that command, never in user-data; the instance's own RAM role (components.alibaba.instance_role) may
read that one parameter, which is how Cloud Assistant resolves the `{{oos-secret:...}}` placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi

from components.alibaba.ecs_host import linux_host
from components.alibaba.host_scripts import render_ready_command
from components.alibaba.instance_role import InstanceRole, InstanceRoleArgs, account_id, secret_read_statements
from components.alibaba.secret_command import SecretCommand, SecretCommandArgs


@dataclass(frozen=True)
class GpuInstanceArgs:
    region: str
    instance_type: str
    image_id: str
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    user_data: str
    api_key: pulumi.Output[str]  # secret
    api_key_env: str
    api_port: int
    readiness_timeout_minutes: int
    # TLS on the API port: the certificate (public) and its private key (a Pulumi secret, sent as an OOS
    # encrypted parameter like the API key); the user-data's gateway conf must expect them (HostConfig.tls).
    tls_certificate: Optional[str] = None
    tls_key: Optional[pulumi.Output[str]] = None
    disk_category: str = "cloud_essd"
    system_disk_gib: int = 100
    public_bandwidth_mbps: int = 0  # 0: no public address
    key_pair: Optional[str] = None
    deletion_protection: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    # What else the host's role may do (instance_role.bucket_read_statements: the weights in the region).
    extra_statements: Sequence[Mapping[str, object]] = ()
    depends_on: Sequence[pulumi.Resource] = ()  # what the instance needs from its first boot (the stack's bucket)


class GpuInstance(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    public_ip: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: GpuInstanceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:GpuInstance", name, None, opts)
        tags = dict(args.tags)
        public = args.public_bandwidth_mbps > 0

        instance = linux_host(
            name,
            self,
            instance_type=args.instance_type,
            image_id=args.image_id,
            vswitch_id=args.vswitch_id,
            security_group_id=args.security_group_id,
            user_data=args.user_data,
            disk_category=args.disk_category,
            disk_gib=args.system_disk_gib,
            public_bandwidth_mbps=args.public_bandwidth_mbps,
            key_pair=args.key_pair,
            tags=tags,
            deletion_protection=args.deletion_protection,
            timeouts=pulumi.CustomTimeouts(create="30m", delete="20m"),
            depends_on=args.depends_on,
        )

        parameter = f"{name}-api-key"
        tls_parameter = f"{name}-tls-key" if args.tls_key is not None else None
        readable = [parameter, *([tls_parameter] if tls_parameter else [])]
        role = InstanceRole(
            f"{name}-host",
            InstanceRoleArgs(
                instance_id=instance.id,
                statements=account_id(self).apply(
                    lambda account: [
                        *(s for p in readable for s in secret_read_statements(args.region, account, p)),
                        *args.extra_statements,
                    ]
                ),
                description="Lets Cloud Assistant on the GPU host read its secret parameters"
                + (", and the host read the weights" if args.extra_statements else ", nothing else"),
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        script = render_ready_command(
            api_port=args.api_port,
            api_key_env=args.api_key_env,
            secret_parameter=parameter,
            timeout_seconds=args.readiness_timeout_minutes * 60,
            tls_certificate=args.tls_certificate,
            tls_key_parameter=tls_parameter,
        )
        self.ready = SecretCommand(
            f"{name}-ready",
            SecretCommandArgs(
                instance_id=instance.id,
                secret=args.api_key,
                script=script,
                parameter_name=parameter,
                extra_secrets={tls_parameter: args.tls_key} if tls_parameter and args.tls_key is not None else {},
                timeout_minutes=args.readiness_timeout_minutes,
                tags=tags,
                description="Install the API key, start the engine, wait for /health",
                depends_on=role.attached,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.instance_id = instance.id
        self.private_ip = instance.private_ip
        self.public_ip = instance.public_ip if public else None
        self.register_outputs(
            {"instance_id": instance.id, "private_ip": instance.private_ip, "ready": self.ready.status}
        )
