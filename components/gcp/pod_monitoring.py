"""Google Cloud Managed Service for Prometheus scraping the serving pods' metrics (a PodMonitoring).

The cluster runs managed collection (components.gcp.gke_cluster: managed_prometheus), which scrapes what
PodMonitoring resources select (monitoring.googleapis.com/v1; GKE's LWS serving tutorial selects the
leaders of a LeaderWorkerSet and scrapes vLLM's /metrics). vLLM's metrics then appear in Cloud Monitoring
as prometheus.googleapis.com/vllm:<name>/... Scraping goes to the pods' metrics port behind the gateway
(core.gateway.METRICS_PORT), not to the engine, which listens on loopback only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

API_VERSION = "monitoring.googleapis.com/v1"
SCRAPE_INTERVAL = "30s"


def serving_pod_monitoring(
    name: str,
    namespace: pulumi.Input[str],
    selector: Mapping[str, str],
    port: int,
    path: str = "/metrics",
    opts: Optional[pulumi.ResourceOptions] = None,
) -> k8s.apiextensions.CustomResource:
    """A PodMonitoring in `namespace` scraping `path` on `port` of the pods `selector` matches."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version=API_VERSION,
        kind="PodMonitoring",
        metadata={"name": "llm-serving", "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
        spec={
            "selector": {"matchLabels": dict(selector)},
            "endpoints": [{"port": port, "path": path, "interval": SCRAPE_INTERVAL}],
        },
        opts=opts,
    )
