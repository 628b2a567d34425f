"""An ACS (serverless Kubernetes) cluster and a Kubernetes provider bound to it.

Every Kubernetes object the stack creates uses `provider`, which depends on the cluster, so
`pulumi destroy` deletes the objects (and the load balancers their Services created) before the
cluster. The kubeconfig is short-lived and a Pulumi secret; see README "Destroy" for refreshing it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s

# The longest credential the API issues (15-4320 minutes): `pulumi destroy` uses the kubeconfig
# stored by the last `pulumi up`, so it stays valid for three days after each update.
CREDENTIAL_MINUTES = 4320


@dataclass(frozen=True)
class AcsClusterArgs:
    vswitch_ids: Sequence[pulumi.Input[str]]  # two zones
    pod_vswitch_ids: Sequence[pulumi.Input[str]]  # same zones, pod addresses (Terway)
    service_cidr: str
    kubernetes_version: Optional[str] = None
    public_endpoint: bool = True  # the kubeconfig the API returns points at the public endpoint
    deletion_protection: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


class AcsCluster(pulumi.ComponentResource):
    cluster_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(self, name: str, args: AcsClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:index:AcsCluster", name, None, opts)
        cluster = alicloud.cs.ManagedKubernetes(
            f"{name}-cluster", name=name, profile="Acs", vswitch_ids=list(args.vswitch_ids),
            pod_vswitch_ids=list(args.pod_vswitch_ids), service_cidr=args.service_cidr,
            version=args.kubernetes_version,
            # Our own NAT gateway (components.network) gives pods egress; do not create a second one.
            new_nat_gateway=False, slb_internet_enabled=args.public_endpoint,
            deletion_protection=args.deletion_protection,
            # Remove what the cluster created on our behalf, so nothing is left billing after destroy.
            delete_options=[{"resource_type": kind, "delete_mode": "delete"}
                            for kind in ("SLB", "ALB", "SLS_Data", "SLS_ControlPlane")],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.deletion_protection,
                custom_timeouts=pulumi.CustomTimeouts(create="60m", update="60m", delete="60m")))
        credential = alicloud.cs.get_cluster_credential_output(
            cluster_id=cluster.id, temporary_duration_minutes=CREDENTIAL_MINUTES,
            opts=pulumi.InvokeOutputOptions(parent=self))
        self.cluster_id = cluster.id
        self.kubeconfig = pulumi.Output.secret(credential.kube_config)
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig,
            # A fresh credential on every `pulumi up` is an update, never a new cluster.
            cluster_identifier=cluster.id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster]))
        self.register_outputs({"cluster_id": cluster.id})
