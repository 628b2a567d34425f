"""How GPU serving pods scale on every Kubernetes target: a HorizontalPodAutoscaler (autoscaling/v2) on a per-pod
custom metric that the cluster's metrics adapter serves (ack, ack-edge, acs: Alibaba's metrics adapter over Managed
Service for Prometheus; gke: the Custom Metrics Stackdriver Adapter; kubernetes: the user's prometheus-adapter), or
KEDA's ScaledObject with a Prometheus trigger (kubernetes, when the cluster runs KEDA), with the same behaviour.

Scale-up is quick (a queue means users are waiting); scale-down waits `scale_down_seconds` of low
load and removes one pod at a time, so a burst between two quiet minutes does not kill a pod that
is still answering long generations (the pod also drains for its grace period on the way out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, cast

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


def behavior(scale_down_seconds: int, snake_case: bool = False) -> dict:
    """The HPA's scaling behaviour (autoscaling/v2 HorizontalPodAutoscalerBehavior), the same on every target: up by
    one pod per window once the load held for it, down by one pod per SCALE_DOWN_PERIOD_SECONDS after
    `scale_down_seconds` of low load. KEDA passes the same object to the HPA it manages
    (ScaledObject spec.advanced.horizontalPodAutoscalerConfig.behavior, keda.sh docs "Scaling Deployments")."""
    window, policies, period = (
        ("stabilization_window_seconds", "policies", "period_seconds")
        if snake_case
        else ("stabilizationWindowSeconds", "policies", "periodSeconds")
    )
    return {
        "scale_up" if snake_case else "scaleUp": {
            window: SCALE_UP_WINDOW_SECONDS,
            policies: [{"type": "Pods", "value": 1, period: SCALE_UP_WINDOW_SECONDS}],
        },
        "scale_down" if snake_case else "scaleDown": {
            window: scale_down_seconds,
            policies: [{"type": "Pods", "value": 1, period: SCALE_DOWN_PERIOD_SECONDS}],
        },
    }


def _child_opts(parent: pulumi.Resource, opts: Optional[pulumi.ResourceOptions]) -> pulumi.ResourceOptions:
    """The component's depends_on on its child too: Pulumi does not pass a component's depends_on on to its
    children (tests/cloud_rules), and the HPA must wait for the metrics API and the workload."""
    return pulumi.ResourceOptions(parent=parent, depends_on=opts.depends_on if opts is not None else None)


def _check(args: AutoscalerArgs | KedaScalerArgs) -> None:
    if not 1 <= args.min_replicas < args.max_replicas:
        raise ValueError(f"need 1 <= min_replicas < max_replicas, got {args.min_replicas}..{args.max_replicas}")
    if args.target_average < 1 or not 0 <= args.scale_down_seconds <= 3600:
        raise ValueError("target_average must be positive and scale_down_seconds 0-3600")


class Autoscaler(pulumi.ComponentResource):
    """An HPA on a per-pod custom metric served by the cluster's metrics adapter (custom.metrics.k8s.io)."""

    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler

    def __init__(self, name: str, args: AutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:Autoscaler", name, None, opts)
        _check(args)
        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
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
                "behavior": cast(Any, behavior(args.scale_down_seconds, snake_case=True)),
            },
            opts=_child_opts(self, opts),
        )
        self.register_outputs({})


KEDA_API_VERSION = "keda.sh/v1alpha1"


@dataclass(frozen=True)
class KedaScalerArgs:
    """A KEDA ScaledObject with a Prometheus trigger: the same bounds, target per pod and behaviour as the HPA."""

    namespace: pulumi.Input[str]
    name: str
    target_api_version: str
    target_kind: str
    target_name: str
    server_address: str  # the Prometheus HTTP API KEDA queries
    query: pulumi.Input[str]  # one value: the metric summed over the serving pods
    target_average: int  # per pod: KEDA's AverageValue divides the query's value by the replicas
    min_replicas: int
    max_replicas: int
    scale_down_seconds: int = 600


class KedaScaler(pulumi.ComponentResource):
    """KEDA creates and owns the HPA (keda-hpa-<name>); its Prometheus scaler reads `query` every 15 s (the
    default pollingInterval). With minReplicaCount >= 1, KEDA's cooldownPeriod (scale to zero only) does not apply."""

    scaled_object: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: KedaScalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:KedaScaler", name, None, opts)
        _check(args)
        self.scaled_object = k8s.apiextensions.CustomResource(
            f"{name}-scaledobject",
            api_version=KEDA_API_VERSION,
            kind="ScaledObject",
            metadata={"name": args.name, "namespace": args.namespace},
            spec={
                "scaleTargetRef": {
                    "apiVersion": args.target_api_version,
                    "kind": args.target_kind,
                    "name": args.target_name,
                },
                "minReplicaCount": args.min_replicas,
                "maxReplicaCount": args.max_replicas,
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior(args.scale_down_seconds)}},
                "triggers": [
                    {
                        "type": "prometheus",
                        "metricType": "AverageValue",
                        "metadata": {
                            "serverAddress": args.server_address,
                            "query": args.query,
                            "threshold": str(args.target_average),
                        },
                    }
                ],
            },
            opts=_child_opts(self, opts),
        )
        self.register_outputs({})
