"""Target `kubernetes`: the shared serving workload on a cluster you already have.

Which cluster: the Kubernetes provider's standard keys (kubernetes:kubeconfig, kubernetes:context, ...), else
the ambient kubeconfig. The model is fetched once into a PVC of the configured storage class. The API is private
(ClusterIP) unless access.public asks for a LoadBalancer, limited to access.allowedCidrs.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.api_key import ApiKey
from components.kubernetes.hardening import pod_security_labels
from components.kubernetes.pvc_model_store import PvcModelStore, PvcModelStoreArgs
from components.kubernetes.serving_workload import ServiceExposure
from core.config.settings import ExistingClusterSettings
from stacks import serving
from stacks.providers import provider_args

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


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
    _, outputs = serving.serve(settings, platform, ns, volumes, importer, api_key.value, opts, serving_depends_on=needs)
    outputs["modelClaim"] = store.serving_claim
    return outputs
