"""Target `acs`: an ACS serverless cluster, an OSS model store and the shared serving workload (as Compute Nest's
ACS deployment)."""

from __future__ import annotations

import pulumi

from components.alibaba.host_scripts import PIP_INDEX_URL
from components.alibaba.jump_host import JumpHost, JumpHostArgs
from components.alibaba.managed_cluster import ManagedCluster, ManagedClusterArgs
from components.alibaba.network import Network
from components.alibaba.oss_model_store import OssModelStore
from components.api_key import ApiKey
from components.kubernetes.leader_worker_set import LeaderWorkerSetController, alibaba_lws
from core import durations, sizing
from core.config.settings import AcsSettings
from core.config.storage import STREAM
from stacks import serving
from stacks.alibaba import cost
from stacks.alibaba.common import alibaba_provider, stack_tags, ubuntu_image
from stacks.alibaba.managed_kubernetes import (
    ACS_EXTRA_EPHEMERAL_STORAGE,
    CLUSTER_SPEC,
    MODEL_PREFIX,
    acs_extra_ephemeral_gib,
    api_server_access,
    autoscale,
    bandwidth_deadlines,
    cluster_network,
    cluster_zones,
    image_mirror,
    import_workers,
    load_balancers,
    mirror_outputs,
    namespace_and_store,
    results_location,
    stream_access,
    streaming_platform,
    worker_image_id,
)

DEFAULT_KUBECTL_MINOR = "1.33"  # kubectl talks to one minor version either side


def build(settings: AcsSettings) -> dict[str, object]:
    provider = alibaba_provider(settings)
    jump = settings.jump_host
    zones = cluster_zones(settings, provider, jump.instance_type if jump.enabled else None)
    tags = stack_tags(settings)
    plan = settings.cluster

    api_key = ApiKey(f"{settings.name}-api-key", settings.api_key)
    streaming = settings.model_store.load == STREAM
    network = cluster_network(settings, zones, tags, provider)
    worker_image = worker_image_id(settings, provider)  # the import's and the mirror's workers
    mirror = image_mirror(settings, provider, network, tags, worker_image)  # beside the cluster, like the import
    ids = network.vswitch_ids
    cluster = ManagedCluster(
        settings.name,
        ManagedClusterArgs(
            cluster_spec=CLUSTER_SPEC,
            vswitch_ids=[ids["nodes-a"], ids["nodes-b"]],
            pod_vswitch_ids=[ids["pods-a"], ids["pods-b"]],
            # RRSA (the OIDC provider) only for streaming: the serving pods' RAM role trusts it.
            enable_rrsa=streaming,
            service_cidr=plan.service_cidr,
            kubernetes_version=plan.kubernetes_version,
            public_endpoint=plan.public_endpoint,
            **api_server_access(settings),
            deletion_protection=settings.deletion_protection,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[provider], depends_on=network.snat_entries),
    )
    in_cluster = pulumi.ResourceOptions(providers=[provider, cluster.provider])

    # RRSA for the OSS volumes of ACS pods is not confirmed: a bucket-scoped RAM user's key in a Secret. Streaming
    # pods use RRSA themselves (the ACS RRSA doc: token projection is on by default in ACS clusters).
    ns, store = namespace_and_store(settings, cluster, tags, in_cluster, auth="access-key")
    stream = stream_access(settings, cluster, store, ns, tags, in_cluster)
    # LWS from Alibaba's catalog and the region's VPC registry: registry.k8s.io is unreliable from mainland China.
    needs: list[pulumi.Resource] = (
        [LeaderWorkerSetController(f"{settings.name}-lws", opts=in_cluster, chart=alibaba_lws(settings.region))]
        if settings.placement.pods > 1
        else []
    )
    if mirror is not None:
        needs.append(mirror.invocation)  # the pods pull the complete copy

    acs = settings.acs
    # The engine image counts twice against a pod's 30 free GiB of ephemeral storage (audit D8).
    engine_storage = {
        ACS_EXTRA_EPHEMERAL_STORAGE: f"{acs_extra_ephemeral_gib(durations.ENGINE_IMAGE_UNPACKED_GB.value)}Gi"
    }
    platform = serving.Platform(
        **streaming_platform(stream),
        helper_pod_labels={"alibabacloud.com/compute-class": "general-purpose"},
        # The benchmark runs the engine image; the import a small one that fits the free 30 GiB.
        helper_pod_annotations=engine_storage,
        pod_annotations=engine_storage,
        pod_labels={
            "alibabacloud.com/compute-class": acs.compute_class,
            "alibabacloud.com/gpu-model-series": acs.gpu_series,
            "alibabacloud.com/compute-qos": acs.compute_qos,
        },
        **load_balancers(settings),
        open_unlabelled_pods=settings.model_store.fluid,  # Fluid's cache master and workers run in the namespace
        pip_index_url=PIP_INDEX_URL,
        **bandwidth_deadlines(settings, gpu_capacity_minutes=durations.GPU_CAPACITY_MIN.value),
    )
    importer = import_workers(settings, provider, network, store, tags, worker_image)
    volumes = _volumes(settings, store, importer, ns, in_cluster)
    workload, outputs = serving.serve(
        settings,
        platform,
        ns,
        volumes,
        importer,
        api_key.value,
        serving.replicas_owned_by_autoscaler(settings, in_cluster),
        serving_depends_on=needs,
        stream_uri=stream.uri if stream is not None else None,
    )
    # ACS provisions a GPU pod's capacity per pod: nothing else has to grow with the HPA.
    outputs.update(autoscale(settings, cluster, ns, in_cluster, workload))

    outputs.update(
        {
            "region": settings.region,
            "zones": list(zones),
            "clusterId": cluster.cluster_id,
            "modelBucket": store.bucket,
            "modelImportWorkers": importer.instance_ids,
            "modelImportProgress": importer.progress,
            **mirror_outputs(mirror),
            "costEstimate": cost.acs_estimate(settings, provider),
            "kubeconfig": cluster.kubeconfig,  # secret
            "kubectlHint": "pulumi stack output kubeconfig --show-secrets > kubeconfig && "
            f"KUBECONFIG=kubeconfig kubectl -n {settings.workload.namespace} get pods",
        }
    )
    if settings.jump_host.enabled:
        outputs.update(_jump_host(settings, provider, network, cluster, zones, tags))
    return outputs


def _volumes(
    settings: AcsSettings, store: OssModelStore, importer, ns, opts: pulumi.ResourceOptions
) -> serving.ModelVolumes:
    """The raw OSS volume, or (acs.fluid) Fluid's cache over it, warmed once the import is done."""
    results = {"persistentVolumeClaim": {"claimName": store.results_claim}} if store.results_claim is not None else None
    location = results_location(store) if results is not None else None
    if not settings.model_store.fluid:
        return serving.ModelVolumes(
            serving={"persistentVolumeClaim": {"claimName": store.serving_claim, "readOnly": True}},
            results=results,
            results_location=location,
        )
    from components.alibaba.fluid_cache import FluidCache, FluidCacheArgs

    cache = FluidCache(
        f"{settings.name}-fluid",
        FluidCacheArgs(
            namespace=ns,
            bucket=store.bucket,
            prefix=MODEL_PREFIX,
            region=settings.region,
            credentials_secret=store.credentials_secret,
            cache_gib=sizing.fluid_cache_gib(settings.model),
            pod_labels={"alibabacloud.com/compute-class": "performance", "alibabacloud.com/compute-qos": "default"},
            preload_path=settings.model.modelscope_id,
            depends_on=serving.import_done(importer),
        ),
        opts=opts,
    )
    return serving.ModelVolumes(
        serving={"persistentVolumeClaim": {"claimName": cache.claim, "readOnly": True}},
        results=results,
        results_location=location,
        ready=[cache],
    )


def _jump_host(settings: AcsSettings, provider, network: Network, cluster: ManagedCluster, zones, tags) -> dict:
    instance_type = settings.jump_host.instance_type
    image = settings.jump_host.image_id or ubuntu_image(settings, provider, instance_type, key="acs.jumpHost.imageId")
    version = settings.cluster.kubernetes_version
    minor = ".".join(version.split(".")[:2]) if version else DEFAULT_KUBECTL_MINOR
    reachable = bool(settings.access.ssh_cidrs)
    host = JumpHost(
        f"{settings.name}-jump",
        JumpHostArgs(
            region=settings.region,
            instance_type=instance_type,
            image_id=image,
            vswitch_id=network.vswitch_ids["nodes-a"],
            security_group_id=network.security_group_id,
            cluster_id=cluster.cluster_id,
            kubectl_minor=minor,
            public_bandwidth_mbps=10 if reachable else 0,
            key_pair=settings.access.ssh_key_pair or None,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    outputs: dict[str, object] = {"jumpHostId": host.instance_id, "jumpHostPrivateIp": host.private_ip}
    if reachable:
        outputs["sshCommand"] = pulumi.Output.concat(
            "ssh -i <", settings.access.ssh_key_pair or "", ".pem> root@", host.public_ip or host.private_ip
        )
    return outputs
