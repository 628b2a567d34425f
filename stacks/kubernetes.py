"""Target `kubernetes`: the shared serving workload on a cluster you already have.

Which cluster: the Kubernetes provider's standard keys (kubernetes:kubeconfig, kubernetes:context, ...), else
the ambient kubeconfig. The model is fetched once into a PVC of the configured storage class. The API is private
(ClusterIP) unless access.public asks for a LoadBalancer, limited to access.allowedCidrs.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.api_key import ApiKey
from components.kubernetes.autoscaler import KedaScaler, KedaScalerArgs
from components.kubernetes.hardening import pod_security_labels
from components.kubernetes.prometheus_operator import pod_monitor, prometheus_rule, required_crds
from components.kubernetes.pvc_model_store import PvcModelStore, PvcModelStoreArgs
from components.kubernetes.serving_workload import LWS_WORKER_INDEX_LABEL, METRICS_PORT_NAME, ServiceExposure
from core.config.kubernetes import KEDA
from core.config.settings import ExistingClusterSettings
from core.gateway import METRICS_PORT
from core.observability import ADAPTER_RULES
from stacks import serving
from stacks.providers import provider_args

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CUSTOM_METRICS_API = "v1beta1.custom.metrics.k8s.io"  # the APIService a prometheus-adapter registers
SCALED_OBJECTS_CRD = "scaledobjects.keda.sh"


def build(settings: ExistingClusterSettings) -> dict[str, object]:
    # A retained namespace and volume outlive `pulumi destroy`; the next `pulumi up` adopts them instead of
    # failing with "already exists".
    provider = k8s.Provider(
        "kubernetes",
        **provider_args(
            settings.provider,
            k8s.ProviderArgs,
            **({"upsert_existing_objects": True} if settings.model_store.retain else {}),
        ),
    )
    opts = pulumi.ResourceOptions(provider=provider)
    api_key = ApiKey(f"{settings.name}-api-key", settings.api_key)
    # A retained model volume must outlive its namespace too: deleting a namespace deletes its PVCs.
    namespace = k8s.core.v1.Namespace(
        f"{settings.name}-namespace",
        metadata={
            "name": settings.workload.namespace,
            "labels": {"app.kubernetes.io/managed-by": "pulumi", **pod_security_labels(host_paths=False)},
        },
        opts=pulumi.ResourceOptions(provider=provider, retain_on_delete=settings.model_store.retain),
    )
    ns = namespace.metadata["name"]
    placement, workload = settings.placement, settings.workload
    shared = workload.replicas * placement.pods > 1  # several pods, maybe on several nodes, read the weights
    store = PvcModelStore(
        f"{settings.name}-models",
        PvcModelStoreArgs(
            namespace=ns,
            size_gib=int(settings.model.weights_gib * 1.1) + 20,
            storage_class=settings.model_store.storage_class,
            access_mode="ReadWriteMany" if shared else "ReadWriteOnce",
            retain=settings.model_store.retain,
        ),
        opts=opts,
    )
    needs = []
    if placement.pods > 1:
        from components.kubernetes.leader_worker_set import LeaderWorkerSetController

        needs.append(LeaderWorkerSetController(f"{settings.name}-lws", opts=opts))
    platform = serving.Platform(
        tolerations=[GPU_TOLERATION],
        surge_updates=False,  # an existing cluster may have no spare GPU
        # Local: the pods see the clients' addresses, which the NetworkPolicy compares with access.allowedCidrs
        # (with Cluster, kube-proxy would replace them by a node's, which this program does not know).
        public_service=(
            ServiceExposure(source_ranges=settings.access.allowed_cidrs, external_traffic_policy="Local")
            if settings.access.public
            else None
        ),
    )
    importer = serving.import_model(settings, platform, ns, store.import_claim, opts)
    volumes = serving.ModelVolumes(
        serving={"persistentVolumeClaim": {"claimName": store.serving_claim, "readOnly": True}}
    )
    workload, outputs = serving.serve(
        settings,
        platform,
        ns,
        volumes,
        importer,
        api_key.value,
        serving.replicas_owned_by_autoscaler(settings, opts),
        serving_depends_on=needs,
    )
    outputs["modelClaim"] = store.serving_claim
    outputs.update(_monitoring(settings, ns, opts))
    outputs.update(_autoscale(settings, ns, workload, opts))
    return outputs


def _monitoring(settings: ExistingClusterSettings, ns, opts: pulumi.ResourceOptions) -> dict[str, object]:
    """kubernetes.prometheusOperator: a PodMonitor on the metrics port and the alerts as a PrometheusRule."""
    if not settings.kubernetes.prometheus_operator:
        return {"metrics": f"not scraped here: the pods serve /metrics on port {METRICS_PORT} (docs/observability.md)"}
    crds = required_crds(settings.name, ("PodMonitor", "PrometheusRule"), opts)
    after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=crds))
    pod_monitor(
        f"{settings.name}-podmonitor",
        ns,
        f"{serving.APP}-engine",
        _metrics_selector(settings),
        METRICS_PORT_NAME,
        opts=after,
    )
    prometheus_rule(f"{settings.name}-alerts", ns, settings.workload.namespace, opts=after)
    return {
        "metrics": f"PodMonitor {serving.APP}-engine and PrometheusRule llm-serving in {settings.workload.namespace}"
    }


def _metrics_selector(settings: ExistingClusterSettings) -> dict[str, str]:
    """The pods serving the API and the metrics: every serving pod, or a multi-pod copy's leader."""
    return {"app": serving.APP, **({LWS_WORKER_INDEX_LABEL: "0"} if settings.placement.pods > 1 else {})}


def _autoscale(settings: ExistingClusterSettings, ns, workload, opts: pulumi.ResourceOptions) -> dict[str, object]:
    """The same HPA as the clouds' on the cluster's custom metrics API (a prometheus-adapter the user runs, with the
    rule in docs/observability.md), or a KEDA ScaledObject. What each needs is read first: a preview on a cluster
    without it fails naming it. Nodes come from the cluster's own autoscaler, if it has one."""
    scaling, cluster = settings.autoscaling, settings.kubernetes
    if not scaling.enabled:
        return serving.autoscaling_off(settings)
    if cluster.autoscaler == KEDA:
        crd = k8s.apiextensions.v1.CustomResourceDefinition.get(
            f"{settings.name}-crd-scaledobject", SCALED_OBJECTS_CRD, opts=opts
        )
        api_version, kind, name = serving.scale_target(settings)
        KedaScaler(
            f"{settings.name}-autoscaler",
            KedaScalerArgs(
                namespace=ns,
                name=serving.APP,
                target_api_version=api_version,
                target_kind=kind,
                target_name=name,
                server_address=cluster.prometheus_url or "",
                query=pulumi.Output.concat("sum(", scaling.metric, '{namespace="', ns, '"})'),
                target_average=scaling.target,
                min_replicas=scaling.min_replicas,
                max_replicas=scaling.max_replicas,
                scale_down_seconds=scaling.scale_down_seconds,
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[crd, workload])),
        )
        return serving.autoscaling_output(settings, f"KEDA (Prometheus {cluster.prometheus_url})")
    api = k8s.apiregistration.v1.APIService.get(f"{settings.name}-custom-metrics-api", CUSTOM_METRICS_API, opts=opts)
    serving.hpa(settings, ns, ADAPTER_RULES[scaling.metric].name, opts, depends_on=[api, workload])
    return serving.autoscaling_output(settings, f"the cluster's custom metrics API ({CUSTOM_METRICS_API})")
