"""The LeaderWorkerSet controller, needed when one model copy spans several pods.

Installed from the project's own Helm chart (kubernetes-sigs/lws, OCI registry.k8s.io). Images come
from registry.k8s.io, which mainland China regions may not reach: see README "Known limitations".
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

CHART = "oci://registry.k8s.io/lws/charts/lws"
CHART_VERSION = "0.9.0"
NAMESPACE = "lws-system"
# The admission webhook's container port (kubernetes-sigs/lws@v0.9.0 charts/lws/templates/webhook/service.yaml:
# port 443 -> targetPort 9443): the API server must reach it on the controller's pod.
WEBHOOK_PORT = 9443


class LeaderWorkerSetController(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:LeaderWorkerSetController", name, None, opts)
        self.release = k8s.helm.v3.Release(
            name,
            name="lws",
            chart=CHART,
            version=CHART_VERSION,
            namespace=NAMESPACE,
            create_namespace=True,
            # Wait until the controller and its webhook serve, so the LeaderWorkerSet can be created.
            atomic=True,
            timeout=600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"status": self.release.status})
