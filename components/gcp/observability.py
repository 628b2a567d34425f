"""What gke adds to Managed Service for Prometheus's scraping (components.gcp.pod_monitoring): the alert rules as a
managed Rules resource, and the dashboard as a Cloud Monitoring dashboard, both from core.observability.

- Rules (monitoring.googleapis.com/v1, namespaced; GKE "Managed rule evaluation and alerting"): the managed rule
  evaluator runs the PromQL; the namespace matcher is set to the serving namespace, as a Rules resource's own
  namespace also is. Firing alerts go to the Alertmanager the managed collection runs in gmp-system, which sends
  nothing until it is given a configuration (Secret alertmanager in gmp-public: docs/observability.md).
- Dashboard: monitoring.Dashboard with PromQL tiles (Cloud Monitoring dashboards accept
  timeSeriesQuery.prometheusQuery), one tile per panel of dashboards/vllm.json.
"""

from __future__ import annotations

import json
from typing import Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from core import observability

RULES_API_VERSION = "monitoring.googleapis.com/v1"


def alert_rules(
    name: str, namespace: pulumi.Input[str], namespace_name: str, opts: Optional[pulumi.ResourceOptions] = None
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name,
        api_version=RULES_API_VERSION,
        kind="Rules",
        metadata={"name": "llm-serving", "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
        spec={"groups": observability.alert_rule_groups(namespace_name)},
        opts=opts,
    )


def dashboard(
    name: str, project: str, namespace_name: str, title: str, opts: Optional[pulumi.ResourceOptions] = None
) -> gcp.monitoring.Dashboard:
    return gcp.monitoring.Dashboard(
        name,
        project=project,
        dashboard_json=json.dumps(observability.cloud_monitoring_dashboard(namespace_name, title), sort_keys=True),
        opts=opts,
    )
