"""`scaling`: how many copies of the model serve, and when an HPA adds or removes copies.

Kubernetes replicas are int32, but every copy needs its own GPUs: 100 copies bounds typos far above any
deployment here. The HPA's behaviour fields bound the stabilisation window at 3600 s
(autoscaling/v2 HPAScalingRules.stabilizationWindowSeconds, kubernetes.io API reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core.config.problems import Problems
from core.config.schema import Group, Int, option, within
from core.targets import ACK_FAMILY, ON_KUBERNETES

# The metrics an HPA can scale on here, each with its default target (per pod, AverageValue):
# - vLLM's own queue: requests waiting for a slot; >0 for long means the engine is saturated.
# - ACK GPU monitoring's per-process SM utilisation in percent (the arena --scale-metric of Alibaba's ACK Edge guide).
QUEUE_METRIC = "vllm:num_requests_waiting"
GPU_METRIC = "DCGM_CUSTOM_PROCESS_SM_UTIL"
METRIC_DEFAULT_TARGETS = {QUEUE_METRIC: 5, GPU_METRIC: 50}
MAX_REPLICAS = 100


class ScalingConfig(Group):
    """Copies of the model, and the autoscaler between replicas and maxReplicas."""

    TARGETS = ON_KUBERNETES
    replicas: Annotated[Int, within(1, MAX_REPLICAS, "copies")] = option(
        1, "Copies of the model behind the Services (the fewest, with an autoscaler)."
    )
    max_replicas: Optional[Annotated[Int, within(1, MAX_REPLICAS, "copies")]] = option(
        None, "Most copies the HPA may run; empty or equal to replicas: no autoscaling.", targets=ACK_FAMILY, example=3
    )
    metric: Literal["vllm:num_requests_waiting", "DCGM_CUSTOM_PROCESS_SM_UTIL"] = option(
        QUEUE_METRIC, "HPA metric per pod: the engine's queue, or ACK's GPU SM utilisation.", targets=ACK_FAMILY
    )
    target: Annotated[Int, within(0, 1000)] = option(
        0, "HPA target per pod; 0: 5 waiting requests, or 50 (% GPU utilisation).", targets=ACK_FAMILY
    )
    scale_down_stabilization_seconds: Annotated[Int, within(0, 3600, "seconds")] = option(
        600, "How long load must stay low before the HPA removes a copy.", targets=ACK_FAMILY
    )


@dataclass(frozen=True)
class Autoscaling:
    """An HPA from min_replicas to max_replicas on `metric`; not enabled when they are equal."""

    metric: str
    target: int  # per pod: waiting requests, or SM utilisation percent
    min_replicas: int
    max_replicas: int
    scale_down_seconds: int

    @property
    def enabled(self) -> bool:
        return self.max_replicas > self.min_replicas


def resolve_autoscaling(config: ScalingConfig, engine: Optional[str], problems: Problems) -> Autoscaling:
    low = config.replicas
    high = config.max_replicas if config.max_replicas is not None else low
    if high < low:
        problems.add(
            "scaling.maxReplicas",
            high,
            f"must be at least scaling.replicas ({low}), the fewest copies the autoscaler keeps",
            f"{problems.set_command('scaling.maxReplicas', low)} (equal: no autoscaling)",
        )
    if config.metric == QUEUE_METRIC and engine is not None and engine != "vllm" and high > low:
        problems.add(
            "scaling.metric",
            config.metric,
            "is a vLLM metric; SGLang does not export it",
            problems.set_command("scaling.metric", GPU_METRIC),
        )
    if config.metric == GPU_METRIC and config.target > 100:
        problems.add(
            "scaling.target",
            config.target,
            "is a GPU utilisation percentage: at most 100",
            problems.set_command("scaling.target", 0),
        )
    return Autoscaling(
        metric=config.metric,
        target=config.target or METRIC_DEFAULT_TARGETS[config.metric],
        min_replicas=low,
        max_replicas=max(low, high),
        scale_down_seconds=config.scale_down_stabilization_seconds,
    )
