"""Managed Service for Prometheus on acs, ack and ack-edge: it scrapes the engine, evaluates the alert rules, and
(with autoscaling) feeds the metrics adapter an HPA reads.

- `arms-prometheus` (cs.KubernetesAddon) installs the Managed Service for Prometheus agent and
  creates the cluster's Prometheus instance. On ACS the same add-on is assumed: ACS's "Use Managed Service for
  Prometheus to monitor ACS clusters" names the component, not its add-on name (not verified offline).
- A PodMonitor (monitoring.coreos.com/v1, read by that agent; the `arms.prometheus.io/*` annotations
  are the ones ACK's LLM-autoscaling guide puts on it) scrapes the engine's /metrics.
- `ack-alibaba-cloud-metrics-adapter` turns a Prometheus series into a per-pod custom metric
  (custom.metrics.k8s.io) by a prometheus-adapter rule, reading the instance's internal HTTP API URL,
  which is looked up once the add-on has created the instance. It is installed the way Alibaba documents
  it: a Helm release of the ACK catalog's chart in kube-system (App Catalog / Helm pages of the ACK and ACS
  docs; Alibaba's ROS example installs ack-alibaba-cloud-metrics-adapter-1.3.3.tgz with
  ALIYUN::CS::ClusterHelmApplication), not a CS add-on, which no source installs (audit D5, claim 18).

- The alert rules of core.observability as ARMS Prometheus alert rules (arms.PrometheusAlertRule) of the
  cluster's instance, sent to ARMS's alert manager (who is notified is set in the ARMS console: notification
  policies).

Unverified offline (see docs/observability.md): the label names of ACK's GPU exporter (NamespaceName, PodName), and
that the Prometheus instance carries the cluster id the lookup and the alert rules use (ARMS's API reference names
the container cluster's id as a Prometheus instance's ClusterId).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s

from components.kubernetes.prometheus_operator import pod_monitor
from core import observability, versions
from core.observability import ADAPTER_RULES as RULES
from core.observability import SeriesRule

PROMETHEUS_ADDON = "arms-prometheus"
ADAPTER_RELEASE = "ack-alibaba-cloud-metrics-adapter"
ADAPTER_NAMESPACE = "kube-system"  # the APIService is served from kube-system (ACK docs)
# arms-prometheus creates the instance asynchronously: look for it this often before giving up (audit m1).
LOOKUP_ATTEMPTS = 20
LOOKUP_PAUSE_SECONDS = 30


@dataclass(frozen=True)
class ServingMetricsArgs:
    cluster_id: pulumi.Input[str]
    namespace: pulumi.Input[str]
    namespace_name: str  # the same namespace as text, for the alert expressions
    app: str  # the serving pods' `app` label
    port_name: str  # the gateway's metrics port name: GET /metrics only, never behind a load balancer
    metric: Optional[str]  # a key of RULES: the adapter serves it to an HPA; None: scraping and alerts only
    region: str  # the adapter's image comes from the region's VPC registry


class ServingMetrics(pulumi.ComponentResource):
    metric_name: str  # the custom metric the HPA reads ("" without autoscaling)
    adapter: Optional[k8s.helm.v3.Release]
    alert_rules: list[alicloud.arms.PrometheusAlertRule]

    def __init__(self, name: str, args: ServingMetricsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:ServingMetrics", name, None, opts)
        if args.metric is not None and args.metric not in RULES:
            raise ValueError(f"metric must be one of {sorted(RULES)}, got {args.metric!r}")
        child = pulumi.ResourceOptions(parent=self)
        prometheus = alicloud.cs.KubernetesAddon(
            f"{name}-prometheus", cluster_id=args.cluster_id, name=PROMETHEUS_ADDON, opts=child
        )
        pod_monitor(
            f"{name}-podmonitor",
            args.namespace,
            f"{args.app}-engine",
            {"app": args.app},
            args.port_name,
            annotations={"arms.prometheus.io/discovery": "true", "arms.prometheus.io/resource": "arms"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[prometheus]),
        )
        self.alert_rules = [
            alicloud.arms.PrometheusAlertRule(
                f"{name}-alert-{alert.name.lower()}",
                cluster_id=args.cluster_id,
                prometheus_alert_rule_name=f"{alert.name}-{args.namespace_name}",
                expression=observability.substitute(alert.expr, args.namespace_name),
                # Minutes: ARMS's CreatePrometheusAlertRule takes 1-1440 (the provider's example sends "1"; the unit
                # is from the API reference, not checked offline), so "at once" becomes 1 minute.
                duration=str(max(1, alert.for_minutes)),
                message=alert.summary,
                labels=[{"name": "severity", "value": alert.severity}],
                notify_type="ALERT_MANAGER",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[prometheus]),
            )
            for alert in observability.ALERTS
        ]
        self.adapter, self.metric_name = None, ""
        if args.metric is not None:
            rule = RULES[args.metric]
            url = prometheus_url(args.cluster_id, prometheus, self)
            self.adapter = k8s.helm.v3.Release(
                f"{name}-adapter",
                name=ADAPTER_RELEASE,
                chart=versions.METRICS_ADAPTER_CHART.value,
                namespace=ADAPTER_NAMESPACE,
                values=url.apply(lambda u: adapter_values(u, rule, args.region)),
                timeout=600,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[prometheus]),
            )
            self.metric_name = rule.name
        self.register_outputs({"metric_name": self.metric_name})


def adapter_values(url: str, rule: SeriesRule, region: str) -> dict:
    """The adapter reads only our rule from the cluster's Prometheus instance; its image from the VPC registry."""
    return {
        "AlibabaCloudMetricsAdapter": {
            "image": {
                "repository": f"registry-{region}-vpc.ack.aliyuncs.com/acs/alibaba-cloud-metrics-adapter-amd64",
                "tag": versions.METRICS_ADAPTER_IMAGE_TAG.value,
            },
            "prometheus": {
                "enabled": True,
                "url": url,
                "metricsRelistInterval": "1m",
                "adapter": {"rules": {"default": False, "custom": [rule.adapter_rule()]}},
            },
        }
    }


def prometheus_url(
    cluster_id: pulumi.Input[str], prometheus: pulumi.CustomResource, parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The internal HTTP API URL of the instance `arms-prometheus` created for this cluster, looked up again for
    up to LOOKUP_ATTEMPTS x LOOKUP_PAUSE_SECONDS while the add-on is still creating it (audit m1)."""
    # Ordered after the add-on: the lookup runs once the add-on resource exists.
    ready = pulumi.Output.all(cluster_id, prometheus.id)

    def pick(values) -> str:
        cluster = values[0]
        if pulumi.runtime.is_dry_run():
            return ""  # unknown until the add-on exists
        for attempt in range(LOOKUP_ATTEMPTS):
            found = alicloud.arms.get_prometheus(enable_details=True, opts=pulumi.InvokeOptions(parent=parent))
            urls = [p.http_api_intra_url for p in found.prometheis if p.cluster_id == cluster and p.http_api_intra_url]
            if urls:
                return urls[0]
            if attempt + 1 < LOOKUP_ATTEMPTS:
                time.sleep(LOOKUP_PAUSE_SECONDS)
        raise ValueError(
            f"no Managed Service for Prometheus instance found for cluster {cluster} after "
            f"{LOOKUP_ATTEMPTS * LOOKUP_PAUSE_SECONDS // 60} minutes; check the {PROMETHEUS_ADDON} add-on in the "
            "ACK console and run `pulumi up` again"
        )

    return ready.apply(pick)
