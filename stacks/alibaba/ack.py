"""Target `ack`: an ACK Pro cluster with an autoscaling GPU node pool, an OSS model store read through
RRSA, the shared serving workload and an HPA on the engine's queue (the ACK LLM best-practice article, corrected)."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.host_scripts import PIP_INDEX_URL
from components.alibaba.managed_cluster import ManagedCluster, ManagedClusterArgs
from components.alibaba.node_pool import NodePool, NodePoolArgs, cluster_autoscaling
from components.api_key import ApiKey
from components.kubernetes.image_prepull import ImagePrepull, ImagePrepullArgs
from core.config.settings import AckTargetSettings
from stacks import serving
from stacks.alibaba import cost
from stacks.alibaba.common import alibaba_provider, stack_tags
from stacks.alibaba.managed_kubernetes import (
    CLUSTER_SPEC,
    GPU_TOLERATION,
    addons,
    api_server_access,
    bandwidth_deadlines,
    cloud_helpers,
    cluster_network,
    cluster_zones,
    image_mirror,
    import_workers,
    kubectl_hint,
    load_balancers,
    mirror_outputs,
    namespace_and_store,
    serve_and_autoscale,
    stream_access,
    streaming_platform,
    system_pool,
    worker_image_id,
)
from stacks.progress import announce, modelled_minutes

TERWAY_ADDONS = ({"name": "terway-eniip"}, {"name": "csi-plugin"}, {"name": "csi-provisioner"})


def build(settings: AckTargetSettings) -> dict[str, object]:
    provider = alibaba_provider(settings)
    ack = settings.ack
    zones = cluster_zones(settings, provider, settings.gpu_pool.instance_type)
    tags = stack_tags(settings)
    plan = settings.cluster
    api_key = ApiKey(f"{settings.name}-api-key", settings.api_key)
    network = cluster_network(settings, zones, tags, provider)
    worker_image = worker_image_id(settings, provider)  # the import's and the mirror's workers
    mirror = image_mirror(settings, provider, network, tags, worker_image)  # beside the cluster, like the import
    ids = network.vswitch_ids
    node_vswitches = [ids["nodes-a"], ids["nodes-b"]]
    cluster = ManagedCluster(
        settings.name,
        ManagedClusterArgs(
            profile="Default",
            cluster_spec=CLUSTER_SPEC,
            vswitch_ids=node_vswitches,
            pod_vswitch_ids=[ids["pods-a"], ids["pods-b"]],
            service_cidr=plan.service_cidr,
            enable_rrsa=True,
            addons=addons(TERWAY_ADDONS, ack.sls_logging),
            kubernetes_version=plan.kubernetes_version,
            public_endpoint=plan.public_endpoint,
            **api_server_access(settings),
            deletion_protection=settings.deletion_protection,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[provider], depends_on=network.snat_entries),
    )
    pools = _node_pools(settings, cluster, node_vswitches, tags, provider)
    system, gpu = pools
    in_cluster = pulumi.ResourceOptions(providers=[provider, cluster.provider])

    ns, store = namespace_and_store(settings, cluster, tags, in_cluster, auth="rrsa")
    engine_prepull(settings, ns, gpu, mirror, in_cluster)
    stream = stream_access(settings, cluster, store, ns, tags, in_cluster)  # modelStore.load stream
    gpu_pool = settings.gpu_pool
    platform = serving.Platform(
        **streaming_platform(stream),
        node_selector=dict(gpu.labels),
        tolerations=[GPU_TOLERATION],
        **load_balancers(settings),
        pip_index_url=PIP_INDEX_URL,
        **cloud_helpers(system),
        **bandwidth_deadlines(settings, gpu_capacity_minutes=0),  # the GPU pool is up before serving starts
        # A rolling update needs one more GPU node; only an autoscaling pool can add it.
        surge_updates=gpu_pool.max_nodes > gpu_pool.min_nodes,
    )
    serving_after: list[pulumi.Resource] = [gpu]
    if mirror is not None:
        serving_after.append(mirror.invocation)  # the pods pull the complete copy
    if gpu_pool.max_nodes > gpu_pool.min_nodes:
        # Before serving: extra replicas and surge rollouts need the nodes only cluster autoscaling adds.
        serving_after.append(
            cluster_autoscaling(settings.name, cluster.cluster_id, pulumi.ResourceOptions(providers=[provider]))
        )
    importer = import_workers(settings, provider, network, store, tags, worker_image)
    outputs = serve_and_autoscale(
        settings,
        platform,
        cluster,
        ns,
        store,
        api_key.value,
        in_cluster,
        importer=importer,
        serving_after=serving_after,
        stream_uri=stream.uri if stream is not None else None,
    )
    outputs.update(
        {
            "region": settings.region,
            "zones": list(zones),
            "clusterId": cluster.cluster_id,
            "gpuNodePoolId": gpu.node_pool_id,
            "systemNodePoolId": system.node_pool_id,
            "gpuInstanceType": gpu_pool.instance_type,
            "modelBucket": store.bucket,
            "modelImportWorkers": importer.instance_ids,
            "modelImportProgress": importer.progress,
            **mirror_outputs(mirror),
            "costEstimate": cost.ack_estimate(settings, provider),
            "kubeconfig": cluster.kubeconfig,  # secret
            "kubectlHint": kubectl_hint(settings),
        }
    )
    return outputs


def engine_prepull(settings: AckTargetSettings, namespace, gpu: NodePool, mirror, opts: pulumi.ResourceOptions):
    """The engine image on each GPU node as soon as it joins (components/kubernetes/image_prepull.py), as on gke.

    The serving workload waits for the GPU pool's create to return, which ACK reports only once its task is done;
    this DaemonSet waits for the cluster alone, so a node starts pulling when it is up. It selects the pool's own
    label (known before the pool exists) and tolerates its taint. With engine.mirror it pulls the copy, once the
    mirror's invocation has succeeded."""
    return ImagePrepull(
        f"{settings.name}-prepull",
        ImagePrepullArgs(
            namespace=namespace,
            image=settings.engine.image,
            node_selector=dict(gpu.labels),
            tolerations=[GPU_TOLERATION],
            depends_on=[mirror.invocation] if mirror is not None else [],
        ),
        opts=opts,
    )


def _node_pools(
    settings: AckTargetSettings,
    cluster: ManagedCluster,
    vswitches: Sequence[pulumi.Input[str]],
    tags: dict,
    provider: alicloud.Provider,
) -> tuple[NodePool, NodePool]:
    pool = settings.gpu_pool
    opts = pulumi.ResourceOptions(providers=[provider])
    system = system_pool(settings, cluster, vswitches, tags, opts)
    gpu = NodePool(
        f"{settings.name}-gpu",
        NodePoolArgs(
            cluster_id=cluster.cluster_id,
            pool_name="gpu",
            vswitch_ids=vswitches,
            instance_types=[pool.instance_type],
            min_nodes=pool.min_nodes,
            max_nodes=pool.max_nodes,
            image_type=settings.ack.node_image_type,
            gpu=True,
            spot=pool.spot,
            # Container images (the engine's is ~10-20 GB) and any local cache of the weights.
            data_disk_gib=settings.disk.size_gib,
            disk_category=settings.disk.category,
            tags=tags,
        ),
        opts=opts,
    )
    announce(
        gpu,
        f"the GPU node pool ({pool.min_nodes} x {pool.instance_type} to start)",
        modelled_minutes(settings, "GPU pool"),
        cluster.cluster_id.apply(lambda c: f"aliyun cs GET /clusters/{c}/nodepools (or kubectl get nodes -w)"),
        [cluster.cluster_id],
    )
    return system, gpu
