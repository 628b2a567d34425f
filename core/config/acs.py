"""`acs`: the serverless GPU capacity of ACS pods (also ack-edge's ACS virtual nodes), Fluid and the jump host."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core.catalog import GPUS
from core.config.problems import Problems
from core.config.schema import EcsInstanceType, Flag, Group, matches, option
from core.targets import ACK_EDGE, ACS

LabelValue = Annotated[
    str,
    matches(
        r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?",
        "a Kubernetes label value (letters, digits, . _ -; at most 63)",
    ),
]


class JumpHostConfig(Group):
    TARGETS = (ACS,)
    enabled: Flag = option(
        True, "A small ECS in the VPC with kubectl and the kubeconfig, as Compute Nest's ACS deployment has."
    )
    instance_type: EcsInstanceType = option("ecs.g7.large", "Instance type of the jump host.")
    image_id: Optional[Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9._-]{1,127}", "an ECS image id")]] = option(
        None, "OS image id of the jump host; empty: the newest Ubuntu 22.04 public image."
    )


class AcsConfig(Group):
    TARGETS = (ACS, ACK_EDGE)
    gpu_series: Optional[LabelValue] = option(
        None,
        "alibabacloud.com/gpu-model-series of GPU pods; empty: derived from placement.gpuKind (only H20 is "
        "confirmed; the console may list it as GU8TF).",
        example="H20",
    )
    compute_class: Literal["gpu", "gpu-hpn"] = option("gpu", "alibabacloud.com/compute-class of GPU pods.")
    compute_qos: Literal["default", "best-effort"] = option("default", "alibabacloud.com/compute-qos of GPU pods.")
    fluid: Flag = option(False, "Cache the model in memory with Fluid (JindoRuntime) for faster loads.", targets=(ACS,))
    jump_host: JumpHostConfig = option(JumpHostConfig(), "The jump host.", targets=(ACS,))


@dataclass(frozen=True)
class AcsPod:
    """The labels that choose the serverless GPU capacity of serving pods."""

    gpu_series: str
    compute_class: str
    compute_qos: str


def resolve_acs_pod(config: AcsConfig, gpu_kind: str, problems: Problems) -> Optional[AcsPod]:
    series = config.gpu_series
    if series is None and gpu_kind in GPUS:
        series = GPUS[gpu_kind].acs_series
        if not series:
            known = [g.name for g in GPUS.values() if g.acs_series]
            problems.add(
                "placement.gpuKind",
                gpu_kind,
                f"no ACS GPU series is known for it; ACS series known here: {', '.join(known)}",
                f"{problems.set_command('placement.gpuKind', 'H20')}, or "
                f"{problems.set_command('acs.gpuSeries', '<series the ACS console lists>')}",
            )
    if not series:
        return None
    return AcsPod(gpu_series=series, compute_class=config.compute_class, compute_qos=config.compute_qos)
