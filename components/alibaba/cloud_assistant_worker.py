"""A short-lived ECS worker that runs one Cloud Assistant command, with a RAM role of its own, then stops itself.

The model import (components/alibaba/model_import_workers.py) and the image mirror (image_mirror.py) each run their
work this way, beside the cluster:

- the instance: pay-as-you-go, no public address (the NAT is its way out), an ESSD system disk;
- its user-data: the set-up, with a fingerprint of what it does, so a change replaces the worker, and the new,
  running instance takes the new command (a stopped worker is never asked to run a command). `image_id` and
  `status` are ignored afterwards: the image may move on, and the worker stops itself (StopCharging) when done;
- its role (components.alibaba.instance_role), with the statements the caller gives, and the command's invocation
  after the role is attached (and after whatever else the command needs); `pulumi up` waits for the invocation's
  Success, bounded by the command's timeout and WAIT_MARGIN_MINUTES.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.cloud_assistant import run_once
from components.alibaba.ecs_host import linux_host
from components.alibaba.host_scripts import write_file
from components.alibaba.instance_role import InstanceRole, InstanceRoleArgs, account_id

# Cloud Assistant: the command's timeout is 10-86400 s (RunCommand "Valid values: 10 to 86400", ROS CDK
# @alicloud/ros-cdk-swas RunCommandProps, the same Cloud Assistant service; the ECS CreateCommand page read here
# states no bound: not verified for ECS). tests/cloud_rules/alibaba.py refuses longer ones.
COMMAND_TIMEOUT_MAX_SECONDS = 86400
WAIT_MARGIN_MINUTES = 10  # Pulumi's wait beyond the command's own timeout (boot, agent, polling)
STOP_AFTER_SECONDS = 60  # the self-stop starts this long after the command returned (its Success is reported)
DISK_CATEGORY = "cloud_essd"
# The metadata service, the RAM-role API call and the self-stop every worker script imports (it is written beside
# them, so their own directory on sys.path finds it).
WORKER_API = Path(__file__).parent.parent / "scripts" / "llm_worker_api.py"


def worker_api_file() -> str:
    """User-data lines that write the workers' shared module beside their scripts."""
    return write_file(f"/usr/local/bin/{WORKER_API.name}", WORKER_API.read_text(), "0644")


# (account id, the worker's instance id) -> the role's policy statements
Statements = Callable[[pulumi.Output[str], pulumi.Output[str]], pulumi.Input[list]]


@dataclass(frozen=True)
class Worker:
    instance: alicloud.ecs.Instance
    invocation: alicloud.ecs.EcsInvocation


def check_timeout(timeout_minutes: int) -> None:
    if not 1 <= timeout_minutes * 60 <= COMMAND_TIMEOUT_MAX_SECONDS:
        raise ValueError(
            f"a Cloud Assistant command runs at most {COMMAND_TIMEOUT_MAX_SECONDS} s; timeout_minutes={timeout_minutes}"
        )


def run_on_worker(
    name: str,
    *,
    parent: pulumi.Resource,
    instance_type: str,
    image_id: pulumi.Input[str],
    vswitch_id: pulumi.Input[str],
    security_group_id: pulumi.Input[str],
    disk_gib: int,
    setup: pulumi.Input[str],
    statements: Statements,
    role_description: str,
    command: pulumi.Input[str],
    command_description: str,
    timeout_minutes: int,
    tags: Mapping[str, str],
    depends_on: Sequence[pulumi.Resource] = (),
    command_after: Sequence[pulumi.Resource] = (),
) -> Worker:
    """The worker `name` (instance `<name>-instance`, role `<name>-role`, command and invocation `<name>`) running
    `command` once its `setup` user-data (plain text) is in place. `depends_on`: what the instance waits for (e.g.
    the NAT); `command_after`: what the command needs besides the role."""
    check_timeout(timeout_minutes)
    instance = linux_host(
        name,
        parent,
        instance_type=instance_type,
        image_id=image_id,
        vswitch_id=vswitch_id,
        security_group_id=security_group_id,
        user_data=setup,
        disk_category=DISK_CATEGORY,
        disk_gib=disk_gib,
        public_bandwidth_mbps=0,  # no public address: the NAT is its way out
        key_pair=None,
        tags=tags,
        depends_on=depends_on,
        stops_itself=True,
    )
    role = InstanceRole(
        f"{name}-role",
        InstanceRoleArgs(
            instance_id=instance.id,
            statements=statements(account_id(parent), instance.id),
            description=role_description,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    invocation = run_once(
        name,
        script=command,
        instance_id=instance.id,
        timeout_seconds=timeout_minutes * 60,
        wait_minutes=timeout_minutes + WAIT_MARGIN_MINUTES,
        description=command_description,
        parent=parent,
        depends_on=[*role.attached, *command_after],  # the command uses the role: attached and allowed first
    )
    return Worker(instance, invocation)
