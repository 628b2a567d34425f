"""A HorizontalPodAutoscaler (autoscaling/v2) on a per-pod custom metric, for GPU serving pods.

Scale-up is quick (a queue means users are waiting); scale-down waits `scale_down_seconds` of low
load and removes one pod at a time, so a burst between two quiet minutes does not kill a pod that
is still answering long generations (the pod also drains for its grace period on the way out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

SCALE_UP_WINDOW_SECONDS = 60
SCALE_DOWN_PERIOD_SECONDS = 300  # at most one pod removed per 5 minutes


@dataclass(frozen=True)
class AutoscalerArgs:
    namespace: pulumi.Input[str]
    name: str
    target_api_version: str  # e.g. apps/v1
    target_kind: str  # e.g. Deployment
    target_name: str
    metric_name: str  # a custom metric of the pods (custom.metrics.k8s.io)
    target_average: int  # per pod
    min_replicas: int
    max_replicas: int
    scale_down_seconds: int = 600


class Autoscaler(pulumi.ComponentResource):
    def __init__(self, name: str, args: AutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:Autoscaler", name, None, opts)
        if not 1 <= args.min_replicas < args.max_replicas:
            raise ValueError(f"need 1 <= min_replicas < max_replicas, got {args.min_replicas}..{args.max_replicas}")
        if args.target_average < 1 or not 0 <= args.scale_down_seconds <= 3600:
            raise ValueError("target_average must be positive and scale_down_seconds 0-3600")
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata={"name": args.name, "namespace": args.namespace},
            spec={
                "scale_target_ref": {
                    "api_version": args.target_api_version,
                    "kind": args.target_kind,
                    "name": args.target_name,
                },
                "min_replicas": args.min_replicas,
                "max_replicas": args.max_replicas,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": args.metric_name},
                            "target": {"type": "AverageValue", "average_value": str(args.target_average)},
                        },
                    }
                ],
                "behavior": {
                    "scale_up": {
                        "stabilization_window_seconds": SCALE_UP_WINDOW_SECONDS,
                        "policies": [{"type": "Pods", "value": 1, "period_seconds": SCALE_UP_WINDOW_SECONDS}],
                    },
                    "scale_down": {
                        "stabilization_window_seconds": args.scale_down_seconds,
                        "policies": [{"type": "Pods", "value": 1, "period_seconds": SCALE_DOWN_PERIOD_SECONDS}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
