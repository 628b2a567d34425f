"""Prometheus Operator resources (monitoring.coreos.com/v1): the PodMonitor that scrapes the serving pods and the
PrometheusRule that holds the alerts. Used on `kubernetes` when the cluster runs the operator, and (the PodMonitor)
by Alibaba's Managed Service for Prometheus, which reads PodMonitors too.

A PodMonitor, not a ServiceMonitor: the metrics port is on the pods only, no Service publishes it (a Service would
put it behind the load balancers' selectors), and a PodMonitor selects the pods directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from core import observability

API_VERSION = "monitoring.coreos.com/v1"
METRICS_PATH = "/metrics"
SCRAPE_INTERVAL = "15s"
CRDS = {"PodMonitor": "podmonitors.monitoring.coreos.com", "PrometheusRule": "prometheusrules.monitoring.coreos.com"}


def required_crds(
    name: str, kinds: Sequence[str], opts: pulumi.ResourceOptions
) -> list[k8s.apiextensions.v1.CustomResourceDefinition]:
    """Read the CRDs the objects need: on a cluster without them the preview fails here, naming the CRD, instead of
    at the first custom resource with "no matches for kind"."""
    return [
        k8s.apiextensions.v1.CustomResourceDefinition.get(f"{name}-crd-{kind.lower()}", CRDS[kind], opts=opts)
        for kind in kinds
    ]


def pod_monitor(
    name: str,
    namespace: pulumi.Input[str],
    monitor_name: str,
    selector: Mapping[str, str],
    port_name: str,
    annotations: Optional[Mapping[str, str]] = None,
    opts: Optional[pulumi.ResourceOptions] = None,
) -> k8s.apiextensions.CustomResource:
    metadata: dict = {"name": monitor_name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return k8s.apiextensions.CustomResource(
        name,
        api_version=API_VERSION,
        kind="PodMonitor",
        metadata=metadata,
        spec={
            "selector": {"matchLabels": dict(selector)},
            "podMetricsEndpoints": [{"port": port_name, "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}],
        },
        opts=opts,
    )


def prometheus_rule(
    name: str, namespace: pulumi.Input[str], namespace_name: str, opts: Optional[pulumi.ResourceOptions] = None
) -> k8s.apiextensions.CustomResource:
    """core.observability's alerts for the serving namespace. Prometheus selects rules by its ruleSelector: the
    label `role: alert-rules` is what kube-prometheus-stack's default does not need (it selects all with
    ruleSelectorNilUsesHelmValues false) and what many setups select on; see docs/observability.md."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version=API_VERSION,
        kind="PrometheusRule",
        metadata={
            "name": "llm-serving",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "pulumi", "role": "alert-rules"},
        },
        spec={"groups": observability.alert_rule_groups(namespace_name)},
        opts=opts,
    )
