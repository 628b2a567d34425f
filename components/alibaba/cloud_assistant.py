"""One Cloud Assistant command run once on one instance, and `pulumi up` waiting for it: the shape every command of
this program shares (the import and mirror workers, the secret installs, the jump host's kubeconfig).

`ecs.Command` holds the script (base64, RunShellScript, run from /root, killed after its timeout); `ecs.EcsInvocation`
runs it on the instance and waits for Success, bounded by its create timeout (pulumi_alicloud ecs/command.py and
ecs/ecs_invocation.py docstrings; CreateCommand's timeout is 10-86400 s, checked by tests/cloud_rules/alibaba.py).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Optional

import pulumi
import pulumi_alicloud as alicloud


def run_once(
    name: str,
    *,
    script: pulumi.Input[str],
    instance_id: pulumi.Input[str],
    timeout_seconds: int,
    wait_minutes: int,
    description: str,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    parameters: bool = False,
    replacement_trigger: Optional[pulumi.Input[Any]] = None,
) -> alicloud.ecs.EcsInvocation:
    """The command `name` and its one invocation on `instance_id`, created after `depends_on`, waited for up to
    `wait_minutes`. `parameters`: the script refers to OOS parameters ({{oos-secret:NAME}}) that the agent resolves.
    `replacement_trigger`: run it again when that value changes."""
    command = alicloud.ecs.Command(
        name,
        name=name,
        type="RunShellScript",
        enable_parameter=True if parameters else None,
        command_content=pulumi.Output.from_input(script).apply(lambda text: base64.b64encode(text.encode()).decode()),
        working_dir="/root",
        timeout=timeout_seconds,
        description=description,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return alicloud.ecs.EcsInvocation(
        name,
        command_id=command.id,
        instance_ids=[instance_id],
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            replacement_trigger=replacement_trigger,
            custom_timeouts=pulumi.CustomTimeouts(create=f"{wait_minutes}m", delete="5m"),
        ),
    )
