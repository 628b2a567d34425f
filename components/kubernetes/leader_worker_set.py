"""The LeaderWorkerSet controller, needed when one model copy spans several pods.

By default installed from the project's own Helm chart (kubernetes-sigs/lws, OCI registry.k8s.io), whose
images come from registry.k8s.io. Mainland China regions may not reach it, so Alibaba targets pass
`alibaba_lws(region)`: the chart Alibaba publishes in the ACK app catalog, with the controller image from
the region's VPC registry, as the Compute Nest ACS template installs it (audit D4, claim 33).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from core import versions

NAMESPACE = "lws-system"
# The admission webhook's container port (kubernetes-sigs/lws@v0.9.0 charts/lws/templates/webhook/service.yaml:
# port 443 -> targetPort 9443): the API server must reach it on the controller's pod.
WEBHOOK_PORT = 9443


@dataclass(frozen=True)
class LwsChart:
    chart: str  # an OCI reference or a chart tarball URL
    version: Optional[str] = None  # None: a tarball carries its version
    values: Mapping[str, object] = field(default_factory=dict)


UPSTREAM_LWS = LwsChart(chart=versions.LWS_CHART.value, version=versions.LWS_CHART_VERSION.value)


def alibaba_lws(region: str) -> LwsChart:
    """The ACK catalog's lws chart and the values the Compute Nest ACS template gives it (quickstart-vllm-ack
    .computenest/ros_templates/acs-ecs.yaml at f9af47c, lines 544-589): the image from the region's VPC
    registry, one replica, no Prometheus or cert-manager, non-root."""
    return LwsChart(
        chart=versions.ALIBABA_LWS_CHART.value,
        values={
            "image": {
                "manager": {
                    "repository": f"registry-{region}-vpc.ack.aliyuncs.com/acs/lws",
                    "tag": versions.ALIBABA_LWS_IMAGE_TAG.value,
                    "pullPolicy": "IfNotPresent",
                }
            },
            "enablePrometheus": False,
            "enableCertManager": False,
            "replicaCount": 1,
            "podSecurityContext": {"runAsNonRoot": True},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "service": {"type": "ClusterIP", "port": 9443},
            "resources": {"requests": {"cpu": 1, "memory": "1Gi"}},
        },
    )


class LeaderWorkerSetController(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, opts: Optional[pulumi.ResourceOptions] = None, chart: LwsChart = UPSTREAM_LWS):
        super().__init__("llm:kubernetes:LeaderWorkerSetController", name, None, opts)
        self.release = k8s.helm.v3.Release(
            name,
            name="lws",
            chart=chart.chart,
            version=chart.version,
            namespace=NAMESPACE,
            create_namespace=True,
            values=dict(chart.values) or None,
            # Wait until the controller and its webhook serve, so the LeaderWorkerSet can be created.
            atomic=True,
            timeout=600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"status": self.release.status})
