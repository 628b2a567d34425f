"""Target `ack`: an ACK Pro cluster with an autoscaling GPU node pool, an OSS model store read through
RRSA, the shared serving workload and an HPA on the engine's queue (reference 003, corrected)."""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_alicloud as alicloud

from components.api_key import ApiKey
from components.autoscaler import Autoscaler, AutoscalerArgs
from components.host_scripts import PIP_INDEX_URL
from components.managed_cluster import ManagedCluster, ManagedClusterArgs
from components.node_pool import GPU_TAINT, NodePool, NodePoolArgs
from components.serving_metrics import ServingMetrics, ServingMetricsArgs
from core.ack_settings import SYSTEM_NODES
from core.settings import Settings
from stacks import cost, serving
from stacks.alibaba import cluster_network, cluster_zones, load_balancers, namespace_and_store, stack_tags

CLUSTER_SPEC = "ack.pro.small"
# Installed with the cluster (the API applies `addons` at creation only): Terway for pod vSwitches,
# and the CSI plugins for the OSS volumes. GPU nodes get ACK's NVIDIA driver and device plugin.
TERWAY_ADDONS = ({"name": "terway-eniip"}, {"name": "csi-plugin"}, {"name": "csi-provisioner"})
GPU_TOLERATION = {"key": GPU_TAINT["key"], "operator": "Equal", "value": GPU_TAINT["value"],
                  "effect": GPU_TAINT["effect"]}


def build(settings: Settings) -> dict[str, object]:
    provider = alicloud.Provider("alicloud", region=settings.region)
    ack = settings.ack
    zones = cluster_zones(settings, provider, ack.gpu_pool.instance_type)
    tags = stack_tags(settings)
    plan = settings.cluster
    api_key = ApiKey(f"{settings.name}-api-key", settings.api_key)
    network = cluster_network(settings, zones, tags, provider)
    ids = network.vswitch_ids
    node_vswitches = [ids["nodes-a"], ids["nodes-b"]]
    cluster = ManagedCluster(settings.name, ManagedClusterArgs(
        profile="Default", cluster_spec=CLUSTER_SPEC, vswitch_ids=node_vswitches,
        pod_vswitch_ids=[ids["pods-a"], ids["pods-b"]], service_cidr=plan.service_cidr, enable_rrsa=True,
        addons=addons(TERWAY_ADDONS, ack.sls_logging), kubernetes_version=plan.kubernetes_version,
        public_endpoint=plan.public_endpoint, deletion_protection=settings.deletion_protection, tags=tags),
        opts=pulumi.ResourceOptions(providers=[provider], depends_on=network.snat_entries))
    pools = _node_pools(settings, cluster, node_vswitches, tags, provider)
    system, gpu = pools
    in_cluster = pulumi.ResourceOptions(providers=[provider, cluster.provider])

    ns, store = namespace_and_store(settings, cluster, tags, in_cluster, auth="rrsa")
    gpu_pool = ack.gpu_pool
    platform = serving.Platform(
        node_selector=dict(gpu.labels), tolerations=[GPU_TOLERATION],
        **load_balancers(settings),
        pip_index_url=PIP_INDEX_URL,
        # A rolling update needs one more GPU node; only an autoscaling pool can add it.
        surge_updates=gpu_pool.max_nodes > gpu_pool.min_nodes)
    outputs = serve_and_autoscale(settings, platform, cluster, ns, store, api_key.value, in_cluster,
                                  import_on=[system], serving_after=[gpu])
    outputs.update({"region": settings.region, "zones": list(zones), "clusterId": cluster.cluster_id,
                    "gpuNodePoolId": gpu.node_pool_id, "systemNodePoolId": system.node_pool_id,
                    "gpuInstanceType": gpu_pool.instance_type, "modelBucket": store.bucket,
                    "costEstimate": cost.ack_estimate(settings, provider),
                    "kubeconfig": cluster.kubeconfig,  # secret
                    "kubectlHint": kubectl_hint(settings)})
    return outputs


def _node_pools(settings: Settings, cluster: ManagedCluster, vswitches: Sequence[pulumi.Input[str]],
                tags: dict, provider: alicloud.Provider) -> tuple[NodePool, NodePool]:
    pool = settings.ack.gpu_pool
    opts = pulumi.ResourceOptions(providers=[provider])
    system = system_pool(settings, cluster, vswitches, tags, opts)
    gpu = NodePool(f"{settings.name}-gpu", NodePoolArgs(
        cluster_id=cluster.cluster_id, pool_name="gpu", vswitch_ids=vswitches, instance_types=[pool.instance_type],
        min_nodes=pool.min_nodes, max_nodes=pool.max_nodes, image_type=settings.ack.node_image_type, gpu=True,
        spot=pool.spot,
        # Container images (the engine's is ~10-20 GB) and any local cache of the weights.
        data_disk_gib=settings.system_disk_gib, disk_category=settings.disk_category, tags=tags), opts=opts)
    return system, gpu


def system_pool(settings: Settings, cluster: ManagedCluster, vswitches: Sequence[pulumi.Input[str]], tags: dict,
                opts: pulumi.ResourceOptions) -> NodePool:
    """Two small CPU nodes, one per zone: system pods, the model import and the benchmark."""
    return NodePool(f"{settings.name}-system", NodePoolArgs(
        cluster_id=cluster.cluster_id, pool_name="system", vswitch_ids=vswitches,
        instance_types=[settings.ack.system_instance_type], min_nodes=SYSTEM_NODES, max_nodes=SYSTEM_NODES,
        image_type=settings.ack.node_image_type, disk_category=settings.disk_category, tags=tags), opts=opts)






def addons(base: Sequence[dict], sls_logging: bool) -> list[dict]:
    """Creation-time add-ons; logtail-ds (an SLS project made for the cluster) when logs go to SLS."""
    return [*base, {"name": "logtail-ds"}] if sls_logging else list(base)




def serve_and_autoscale(settings: Settings, platform: serving.Platform, cluster: ManagedCluster, ns, store,
                        api_key: pulumi.Output[str], in_cluster: pulumi.ResourceOptions,
                        import_on: Sequence[pulumi.Resource], serving_after: Sequence[pulumi.Resource]) -> dict:
    """ack and ack-edge alike: import on the system nodes, serve, autoscale, and ship logs when asked."""
    importer = serving.import_model(settings, platform, ns, store.import_claim,
                                    pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=import_on)))
    volumes = serving.ModelVolumes(
        serving={"persistentVolumeClaim": {"claimName": store.serving_claim, "readOnly": True}},
        results={"persistentVolumeClaim": {"claimName": store.results_claim}})
    workload, outputs = serving.serve(settings, platform, ns, volumes, importer, api_key,
                                      replicas_owned_by_hpa(settings, in_cluster), serving_depends_on=serving_after)
    outputs.update(autoscale(settings, cluster, ns, in_cluster, workload))
    if settings.ack.sls_logging:
        outputs.update(collect_logs(settings, cluster.cluster_id, ns, in_cluster))
    return outputs


def replicas_owned_by_hpa(settings: Settings, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """With an HPA, `pulumi up` sets the Deployment's replicas at creation only: re-applying llm:replicas on
    every update would scale a busy service down to its minimum."""
    if not settings.ack.autoscaling.enabled:
        return opts

    def ignore_replicas(args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        if args.type_ not in ("kubernetes:apps/v1:Deployment", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"):
            return None
        return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])))
    # `transformations` reach the component's children (the mock engine does not run `transforms`).
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transformations=[ignore_replicas]))


def autoscale(settings: Settings, cluster: ManagedCluster, ns: pulumi.Output[str], opts: pulumi.ResourceOptions,
              workload) -> dict[str, object]:
    """Managed Prometheus, the metrics adapter and the HPA, when llm:maxReplicas > llm:replicas."""
    scaling = settings.ack.autoscaling
    if not scaling.enabled:
        return {"autoscaling": f"off: {scaling.min_replicas} replica(s) (llm:maxReplicas = llm:replicas)"}
    metrics = ServingMetrics(f"{settings.name}-metrics", ServingMetricsArgs(
        cluster_id=cluster.cluster_id, namespace=ns, app=serving.APP, port_name="http", metric=scaling.metric),
        opts=opts)
    multi_pod = settings.placement.pods > 1
    Autoscaler(f"{settings.name}-autoscaler", AutoscalerArgs(
        namespace=ns, name=serving.APP,
        target_api_version="leaderworkerset.x-k8s.io/v1" if multi_pod else "apps/v1",
        target_kind="LeaderWorkerSet" if multi_pod else "Deployment", target_name=serving.APP,
        metric_name=metrics.metric_name, target_average=scaling.target, min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas, scale_down_seconds=scaling.scale_down_seconds),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[metrics, workload])))
    return {"autoscaling": f"{scaling.min_replicas}-{scaling.max_replicas} replicas on {scaling.metric} "
                           f"(target {scaling.target} per pod)"}


def collect_logs(settings: Settings, cluster_id: pulumi.Output[str], ns: pulumi.Output[str],
                 opts: pulumi.ResourceOptions) -> dict[str, object]:
    from components.log_collection import LogCollection, LogCollectionArgs
    logs = LogCollection(f"{settings.name}-logs", LogCollectionArgs(
        project=pulumi.Output.concat("k8s-log-", cluster_id), namespace=ns, app=serving.APP,
        logstore=f"{settings.name}-serving"), opts=opts)
    return {"slsLogstore": logs.logstore}


def kubectl_hint(settings: Settings) -> str:
    return ("pulumi stack output kubeconfig --show-secrets > kubeconfig && "
            f"KUBECONFIG=kubeconfig kubectl -n {settings.workload.namespace} get pods,hpa")
