"""A Cloud Assistant command that reads one secret on an ECS instance, run once and waited for.

The secret travels as an OOS encrypted parameter that the command references as
`{{oos-secret:NAME}}`: Cloud Assistant resolves it on the instance, with the instance's own RAM role
(components.alibaba.instance_role), so the value never appears in user-data, the command text or
Pulumi's plaintext state. The agent deletes a script that held such a reference after the run
(aliyun_assist_client agent/taskengine/basetask.go: ScriptToDelete). `pulumi up` waits for the command to succeed
(EcsInvocation waits for Success, bounded by its create timeout), and a new secret value runs it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.cloud_assistant import run_once

MARGIN_SECONDS = 300


@dataclass(frozen=True)
class SecretCommandArgs:
    instance_id: pulumi.Input[str]
    secret: pulumi.Output[str]  # a Pulumi secret
    script: str  # shell; refers to the secret as {{oos-secret:<parameter_name>}}
    parameter_name: str
    timeout_minutes: int
    description: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # More secrets the script refers to, by parameter name (e.g. the TLS private key), delivered the same way.
    extra_secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    # What the agent needs before it can resolve the OOS placeholder: the instance's RAM role, attached and
    # allowed to read the parameter (components.alibaba.instance_role.InstanceRole.attached).
    depends_on: Sequence[pulumi.Resource] = ()


class SecretCommand(pulumi.ComponentResource):
    status: pulumi.Output[str]

    def __init__(self, name: str, args: SecretCommandArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:SecretCommand", name, None, opts)
        parameter = alicloud.oos.SecretParameter(
            args.parameter_name,
            secret_parameter_name=args.parameter_name,
            value=args.secret,
            type="Secret",
            description=args.description,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        extra = [
            alicloud.oos.SecretParameter(
                parameter_name,
                secret_parameter_name=parameter_name,
                value=value,
                type="Secret",
                description=args.description,
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for parameter_name, value in args.extra_secrets.items()
        ]
        invocation = run_once(
            name,
            script=args.script,
            instance_id=args.instance_id,
            timeout_seconds=args.timeout_minutes * 60 + MARGIN_SECONDS,
            wait_minutes=args.timeout_minutes + MARGIN_SECONDS // 60 + 5,
            description=args.description,
            parent=self,
            depends_on=[parameter, *extra, *args.depends_on],
            parameters=True,
            # A changed secret must be installed again: re-run the command when one changes.
            replacement_trigger=(
                pulumi.Output.secret(pulumi.Output.all(args.secret, *args.extra_secrets.values()))
                if args.extra_secrets
                else args.secret
            ),
        )
        self.status = invocation.status
        self.register_outputs({"status": invocation.status})
