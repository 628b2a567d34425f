"""GKE's Custom Metrics Stackdriver Adapter: serves Cloud Monitoring metrics (Managed Service for Prometheus data
included) to the HPA through the custom and external metrics APIs.

The objects are those of Google's manifest (GoogleCloudPlatform/k8s-stackdriver
custom-metrics-stackdriver-adapter/deploy/production/adapter_new_resource_model.yaml at 0857364d, which GKE's
"Best practices for autoscaling LLM inference workloads with GPUs" and its LWS serving tutorial apply), written
here so they are pinned, parented and deleted with the stack. The adapter reads Cloud Monitoring as its
Kubernetes service account through workload identity federation: that principal gets roles/monitoring.viewer
on the project (the same guide). A PodMonitoring metric then reaches the HPA as
`prometheus.googleapis.com|<metric>|<kind>`, e.g. prometheus.googleapis.com|vllm:num_requests_waiting|gauge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.gcp.gcs_model_store import workload_principal
from core import versions

NAMESPACE = "custom-metrics"
ACCOUNT = "custom-metrics-stackdriver-adapter"
LABELS = {"run": ACCOUNT, "k8s-app": ACCOUNT}
# The APIs the adapter serves, with their priorities in Google's manifest.
API_SERVICES = (
    ("custom.metrics.k8s.io", "v1beta1", 100),
    ("custom.metrics.k8s.io", "v1beta2", 200),
    ("external.metrics.k8s.io", "v1beta1", 100),
)


def prometheus_metric(name: str, kind: str = "gauge") -> str:
    """The custom metric name the adapter gives a Managed Service for Prometheus series."""
    return f"prometheus.googleapis.com|{name}|{kind}"


@dataclass(frozen=True)
class CustomMetricsAdapterArgs:
    project: str
    project_number: pulumi.Input[str]
    workload_pool: str  # <project>.svc.id.goog


class CustomMetricsAdapter(pulumi.ComponentResource):
    """`opts` carries the cluster's provider for the Kubernetes objects; `project_opts` the Google provider."""

    deployment: k8s.apps.v1.Deployment
    viewer: gcp.projects.IAMMember

    def __init__(
        self,
        name: str,
        args: CustomMetricsAdapterArgs,
        opts: pulumi.ResourceOptions,
        project_opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("llm:gcp:CustomMetricsAdapter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        managed = {"app.kubernetes.io/managed-by": "pulumi"}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": NAMESPACE, "labels": managed}, opts=child
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account", metadata={"name": ACCOUNT, "namespace": NAMESPACE, "labels": managed}, opts=in_ns
        )
        subject: list[k8s.rbac.v1.SubjectArgsDict] = [
            {"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}
        ]
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-auth-delegator",
            metadata={"name": "custom-metrics:system:auth-delegator", "labels": managed},
            role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
            subjects=subject,
            opts=in_ns,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-auth-reader",
            metadata={"name": "custom-metrics-auth-reader", "namespace": "kube-system", "labels": managed},
            role_ref={
                "api_group": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            subjects=subject,
            opts=in_ns,
        )
        reader = k8s.rbac.v1.ClusterRole(
            f"{name}-resource-reader",
            metadata={"name": "custom-metrics-resource-reader", "labels": managed},
            rules=[
                {"api_groups": [""], "resources": ["pods", "nodes", "nodes/stats"], "verbs": ["get", "list", "watch"]}
            ],
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-resource-reader",
            metadata={"name": "custom-metrics-resource-reader", "labels": managed},
            role_ref={
                "api_group": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "custom-metrics-resource-reader",
            },
            subjects=subject,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, reader]),
        )
        # The HPA controller reads external metrics too (Google's manifest grants it; kept for parity).
        external = k8s.rbac.v1.ClusterRole(
            f"{name}-external-reader",
            metadata={"name": "external-metrics-reader", "labels": managed},
            rules=[{"api_groups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["list", "get", "watch"]}],
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-external-reader",
            metadata={"name": "external-metrics-reader", "labels": managed},
            role_ref={
                "api_group": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "external-metrics-reader",
            },
            subjects=[{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[external]),
        )
        self.viewer = gcp.projects.IAMMember(
            f"{name}-monitoring-viewer",
            project=args.project,
            role="roles/monitoring.viewer",
            member=workload_principal(args.project_number, args.workload_pool, NAMESPACE, ACCOUNT),
            opts=pulumi.ResourceOptions.merge(project_opts or pulumi.ResourceOptions(), child),
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": ACCOUNT, "namespace": NAMESPACE, "labels": {**LABELS, **managed}},
            spec={
                "replicas": 1,
                "selector": {"match_labels": LABELS},
                "template": {
                    "metadata": {"labels": {**LABELS, "kubernetes.io/cluster-service": "true"}},
                    "spec": {
                        "service_account_name": ACCOUNT,
                        "containers": [
                            {
                                "name": "pod-custom-metrics-stackdriver-adapter",
                                "image": versions.CUSTOM_METRICS_ADAPTER_IMAGE.value,
                                "command": [
                                    "/adapter",
                                    "--use-new-resource-model=true",
                                    "--fallback-for-container-metrics=true",
                                ],
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "400Mi"},
                                    "limits": {"cpu": "250m", "memory": "400Mi"},
                                },
                                "security_context": {
                                    "allow_privilege_escalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account, self.viewer]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": ACCOUNT, "namespace": NAMESPACE, "labels": {**LABELS, **managed}},
            spec={
                "ports": [{"port": 443, "protocol": "TCP", "target_port": 443}],
                "selector": LABELS,
                "type": "ClusterIP",
            },
            opts=in_ns,
        )
        for group, version, priority in API_SERVICES:
            k8s.apiregistration.v1.APIService(
                f"{name}-{version}-{group.split('.')[0]}",
                metadata={"name": f"{version}.{group}", "labels": managed},
                spec={
                    # As Google's manifest: the aggregator does not verify the adapter's self-signed certificate.
                    "insecure_skip_tls_verify": True,
                    "group": group,
                    "group_priority_minimum": 100,
                    "version_priority": priority,
                    "service": {"name": ACCOUNT, "namespace": NAMESPACE},
                    "version": version,
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[service, self.deployment]),
            )
        self.register_outputs({})
