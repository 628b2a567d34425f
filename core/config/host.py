"""`ecs`: what only the ecs target's GPU host has: its OS image, NVIDIA driver and readiness wait."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Optional

from core import durations
from core.catalog import ModelSpec
from core.config.problems import Problems
from core.config.schema import Group, Int, matches, option, within
from core.targets import ECS

# Cloud Assistant runs a command for at most 86400 s (ecs.Command `timeout`, ECS CreateCommand API): the
# readiness wait can be at most a day less the command's margin.
MAX_READINESS_MINUTES = 1380
# The readiness wait: the modelled time (core.durations.ecs_readiness) x 1.5, at least 30 minutes.
READINESS_MARGIN = 1.5
READINESS_FLOOR_MINUTES = 30


class EcsConfig(Group):
    TARGETS = (ECS,)
    image_id: Optional[
        Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9._-]{1,127}", "an ECS image id like m-bp1...")]
    ] = option(
        None,
        "OS image id; empty: the newest Ubuntu 22.04 public image (UEFI where the type needs it).",
        example="m-bp1exampleimage",
    )
    # Ubuntu's NVIDIA server packages are named by branch (nvidia-headless-570-server).
    gpu_driver_branch: Annotated[str, matches(r"[0-9]{3}", "a three-digit NVIDIA driver branch like 570")] = option(
        "570", "NVIDIA server driver branch installed when the image has none."
    )
    readiness_timeout_minutes: Annotated[Int, within(0, MAX_READINESS_MINUTES, "minutes")] = option(
        0,
        "How long `pulumi up` waits for the API; 0: the modelled time at the host's bandwidth x 1.5 "
        "(core/durations.py).",
    )


@dataclass(frozen=True)
class EcsHost:
    zone: Optional[str]
    image_id: Optional[str]
    gpu_driver_branch: str
    readiness_timeout_minutes: int
    egress_mbps: int  # the bandwidth the readiness wait was derived from


def resolve_host(
    config: EcsConfig,
    zone: Optional[str],
    model: Optional[ModelSpec],
    egress_mbps: int,
    bandwidth_key: str,
    problems: Problems,
) -> EcsHost:
    """`egress_mbps`: the host's way to ModelScope and the registry (the NAT EIP, or its own public bandwidth,
    named by `bandwidth_key`); the readiness wait is derived from it."""
    timeout = config.readiness_timeout_minutes
    if model is not None:
        plan = durations.ecs_readiness(model, egress_mbps)
        modelled = math.ceil(plan.minutes)
        estimate = plan.deadline(READINESS_MARGIN, READINESS_FLOOR_MINUTES)
        if config.readiness_timeout_minutes and config.readiness_timeout_minutes < modelled:
            problems.add(
                "ecs.readinessTimeoutMinutes",
                config.readiness_timeout_minutes,
                f"is shorter than the {modelled} minutes a first start takes at {egress_mbps} Mbit/s "
                f"({plan.describe()})",
                f"{problems.set_command('ecs.readinessTimeoutMinutes', min(estimate, MAX_READINESS_MINUTES))}"
                f", or {problems.rm_command('ecs.readinessTimeoutMinutes')} to derive it",
            )
        elif not config.readiness_timeout_minutes and estimate > MAX_READINESS_MINUTES:
            problems.add(
                bandwidth_key,
                egress_mbps,
                f"makes the first start of {model.name} take {modelled} minutes; Cloud Assistant waits at most "
                f"{MAX_READINESS_MINUTES}",
                "raise the bandwidth, or serve the model on a Kubernetes target",
            )
        timeout = timeout or min(estimate, MAX_READINESS_MINUTES)
    return EcsHost(
        zone=zone,
        image_id=config.image_id,
        gpu_driver_branch=config.gpu_driver_branch,
        readiness_timeout_minutes=timeout,
        egress_mbps=egress_mbps,
    )
