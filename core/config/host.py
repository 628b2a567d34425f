"""`ecs`: what only the ecs target's GPU host has: its OS image, NVIDIA driver and readiness wait."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional

from core import sizing
from core.catalog import ModelSpec
from core.config.schema import Group, Int, matches, option, within
from core.targets import ECS

# Cloud Assistant runs a command for at most 86400 s (ecs.Command `timeout`, ECS CreateCommand API): the
# readiness wait can be at most a day less the command's margin.
MAX_READINESS_MINUTES = 1380


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
        0, "How long `pulumi up` waits for the API; 0: estimated from the model."
    )


@dataclass(frozen=True)
class EcsHost:
    zone: Optional[str]
    image_id: Optional[str]
    gpu_driver_branch: str
    readiness_timeout_minutes: int


def resolve_host(config: EcsConfig, zone: Optional[str], model: Optional[ModelSpec]) -> EcsHost:
    estimate = sizing.readiness_timeout_minutes(model) if model else 0
    return EcsHost(
        zone=zone,
        image_id=config.image_id,
        gpu_driver_branch=config.gpu_driver_branch,
        readiness_timeout_minutes=config.readiness_timeout_minutes or min(estimate, MAX_READINESS_MINUTES),
    )
