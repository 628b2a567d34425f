"""The metric pipeline an HPA needs on ACK: managed Prometheus scrapes, the metrics adapter serves.

- `arms-prometheus` (cs.KubernetesAddon) installs the Managed Service for Prometheus agent and
  creates the cluster's Prometheus instance.
- A PodMonitor (monitoring.coreos.com/v1, read by that agent; the `arms.prometheus.io/*` annotations
  are the ones ACK's LLM-autoscaling guide puts on it) scrapes the engine's /metrics.
- `ack-alibaba-cloud-metrics-adapter` turns a Prometheus series into a per-pod custom metric
  (custom.metrics.k8s.io) by a prometheus-adapter rule, reading the instance's internal HTTP API URL,
  which is looked up once the add-on has created the instance.

Unverified offline (see README "ack"): that the adapter is installable as a cs.KubernetesAddon under
this name and takes this config layout (ACK documents `AlibabaCloudMetricsAdapter.prometheus.url` and
prometheus-adapter style rules; older guides install it as a Helm chart from the ACK catalog), and the
label names of ACK's GPU exporter (NamespaceName, PodName).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s

PROMETHEUS_ADDON = "arms-prometheus"
ADAPTER_ADDON = "ack-alibaba-cloud-metrics-adapter"
METRICS_PATH = "/metrics"
SCRAPE_INTERVAL = "15s"


@dataclass(frozen=True)
class SeriesRule:
    """How a Prometheus series becomes the per-pod custom metric `name`."""

    series: str
    name: str  # as the HPA asks for it (custom metric names are URL path segments: no ':')
    namespace_label: str
    pod_label: str
    aggregate: str  # sum: a count per pod; avg: a percentage per pod

    def adapter_rule(self) -> dict:
        return {
            "seriesQuery": f'{{__name__="{self.series}",{self.namespace_label}!="",{self.pod_label}!=""}}',
            "resources": {
                "overrides": {self.namespace_label: {"resource": "namespace"}, self.pod_label: {"resource": "pod"}}
            },
            "name": {"matches": f"^{self.series}$", "as": self.name},
            "metricsQuery": f"{self.aggregate}(<<.Series>>{{<<.LabelMatchers>>}}) by (<<.GroupBy>>)",
        }


# The engine's queue, scraped by our PodMonitor (prometheus-operator labels: namespace, pod), and
# ACK GPU monitoring's per-process SM utilisation (its exporter's own label names).
RULES: Mapping[str, SeriesRule] = {
    "vllm:num_requests_waiting": SeriesRule(
        "vllm:num_requests_waiting", "vllm_num_requests_waiting", "namespace", "pod", "sum"
    ),
    "DCGM_CUSTOM_PROCESS_SM_UTIL": SeriesRule(
        "DCGM_CUSTOM_PROCESS_SM_UTIL", "DCGM_CUSTOM_PROCESS_SM_UTIL", "NamespaceName", "PodName", "avg"
    ),
}


@dataclass(frozen=True)
class ServingMetricsArgs:
    cluster_id: pulumi.Input[str]
    namespace: pulumi.Input[str]
    app: str  # the serving pods' `app` label
    port_name: str  # the gateway's metrics port name: GET /metrics only, never behind a load balancer
    metric: str  # a key of RULES


class ServingMetrics(pulumi.ComponentResource):
    metric_name: str  # the custom metric the HPA reads
    adapter: alicloud.cs.KubernetesAddon

    def __init__(self, name: str, args: ServingMetricsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:ServingMetrics", name, None, opts)
        if args.metric not in RULES:
            raise ValueError(f"metric must be one of {sorted(RULES)}, got {args.metric!r}")
        rule = RULES[args.metric]
        child = pulumi.ResourceOptions(parent=self)
        prometheus = alicloud.cs.KubernetesAddon(
            f"{name}-prometheus", cluster_id=args.cluster_id, name=PROMETHEUS_ADDON, opts=child
        )
        k8s.apiextensions.CustomResource(
            f"{name}-podmonitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={
                "name": f"{args.app}-engine",
                "namespace": args.namespace,
                "annotations": {"arms.prometheus.io/discovery": "true", "arms.prometheus.io/resource": "arms"},
            },
            spec={
                "selector": {"matchLabels": {"app": args.app}},
                "podMetricsEndpoints": [{"port": args.port_name, "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[prometheus]),
        )
        url = prometheus_url(args.cluster_id, prometheus, self)
        config = url.apply(lambda u: json.dumps(adapter_config(u, rule)))
        self.adapter = alicloud.cs.KubernetesAddon(
            f"{name}-adapter",
            cluster_id=args.cluster_id,
            name=ADAPTER_ADDON,
            config=config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[prometheus]),
        )
        self.metric_name = rule.name
        self.register_outputs({"metric_name": rule.name})


def adapter_config(url: str, rule: SeriesRule) -> dict:
    """The adapter reads only our rule from the cluster's Prometheus instance."""
    return {
        "AlibabaCloudMetricsAdapter": {
            "prometheus": {
                "enabled": True,
                "url": url,
                "adapter": {"rules": {"default": False, "custom": [rule.adapter_rule()]}},
            }
        }
    }


def prometheus_url(
    cluster_id: pulumi.Input[str], prometheus: pulumi.Resource, parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The internal HTTP API URL of the instance `arms-prometheus` created for this cluster."""
    found = alicloud.arms.get_prometheus_output(
        enable_details=True, opts=pulumi.InvokeOutputOptions(parent=parent, depends_on=[prometheus])
    )

    def pick(values) -> str:
        cluster, result = values
        urls = [p.http_api_intra_url for p in result.prometheis if p.cluster_id == cluster and p.http_api_intra_url]
        if not urls:
            raise ValueError(
                f"no Managed Service for Prometheus instance found for cluster {cluster}; "
                f"check the {PROMETHEUS_ADDON} add-on in the ACK console and run `pulumi up` again"
            )
        return urls[0]

    return pulumi.Output.all(cluster_id, found).apply(pick)
