"""What the managed-Kubernetes targets (acs, ack, ack-edge) share: zones, the cluster network, the namespace and
OSS model store, the load balancers, and for ack and ack-edge the system pool and the serve-and-autoscale tail."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.managed_cluster import ManagedCluster
from components.alibaba.network import Network, NetworkArgs, Subnet
from components.alibaba.node_pool import GPU_TAINT, NodePool, NodePoolArgs
from components.alibaba.serving_metrics import ServingMetrics, ServingMetricsArgs
from components.kubernetes.autoscaler import Autoscaler, AutoscalerArgs
from components.kubernetes.serving_workload import METRICS_PORT_NAME
from core import durations, sizing, versions
from core.config.ack import SYSTEM_DISK_CATEGORY, SYSTEM_NODES
from core.config.problems import ConfigError, Problem
from core.config.settings import AckFamilySettings, AlibabaClusterSettings, ClusterSettings
from stacks import serving

MODEL_PREFIX = "models"  # objects under oss://<bucket>/models/<ModelScope id>/
ADDRESS_TYPE = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type"
CLB_PROTOCOL_PORT = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-protocol-port"
CLB_CERT_ID = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-cert-id"
CLUSTER_SPEC = "ack.pro.small"
GPU_TOLERATION = {
    "key": GPU_TAINT["key"],
    "operator": "Equal",
    "value": GPU_TAINT["value"],
    "effect": GPU_TAINT["effect"],
}


# ModelScope's intranet acceleration (OSS over the region's internal network, bypassing the NAT where a region
# serves all models: cn-hangzhou, cn-zhangjiakou, cn-wulanchabu). The SDK detects the region from ECS metadata,
# which pods may not reach, so the region is given. Source: ModelScope docs "Alibaba Cloud Intranet
# Acceleration" (cloud-accelerator_EN.md); its throughput is unknown, so the deadlines still assume the NAT.
def modelscope_intranet_env(region: str) -> dict[str, str]:
    return {"INTRA_CLOUD_ACCELERATION": "true", "INTRA_CLOUD_ACCELERATION_REGION": region}


IMPORT_DEADLINE_MARGIN = 2.0  # the download's rate is the softest figure (core/durations.py)
IMPORT_DEADLINE_FLOOR_MINUTES = 30
# ACS: each pod has 30 GiB of ephemeral storage, and an image takes at least twice its size there; more is
# declared by this annotation, billed as PL1 ESSD while the pod runs (ACS help "Increase temporary storage").
ACS_EXTRA_EPHEMERAL_STORAGE = "alibabacloud.com/extra-ephemeral-storage"
ACS_FREE_EPHEMERAL_GIB = 30
SCRATCH_GIB = 10  # logs, caches, the engine's compile cache


def acs_extra_ephemeral_gib(image_unpacked_gb: float, scratch_gib: int = SCRATCH_GIB) -> int:
    """Extra ephemeral storage an ACS pod needs beyond the free 30 GiB: twice the unpacked image plus scratch."""
    need = 2 * image_unpacked_gb / durations.GB_PER_GIB + scratch_gib
    return max(0, math.ceil(need - ACS_FREE_EPHEMERAL_GIB))


def import_image(settings: AlibabaClusterSettings) -> str:
    """A small image for the import Job instead of the engine's (it only runs bash, pip and python)."""
    return (versions.IMPORT_IMAGE_CN if settings.mainland_china else versions.IMPORT_IMAGE).value


def bandwidth_deadlines(settings: AlibabaClusterSettings, gpu_capacity_minutes: float) -> dict:
    """Platform fields derived from network.natBandwidthMbps (core/durations.py): the import Job's deadline, and
    the serving pods' load estimate plus any image pull longer than the workload's fixed allowance."""
    from components.kubernetes.serving_workload import SCHEDULE_AND_PULL_MINUTES

    mbps = settings.network.nat_bandwidth_mbps
    importing = durations.model_import(settings.model, mbps)
    pods = settings.placement.pods * settings.workload.replicas  # every pod of the first rollout pulls at once
    starting = durations.pod_start(mbps, pods, gpu_capacity_minutes)
    overflow = max(0, math.ceil(starting.minutes) - SCHEDULE_AND_PULL_MINUTES)
    return {
        "import_timeout_minutes": importing.deadline(IMPORT_DEADLINE_MARGIN, IMPORT_DEADLINE_FLOOR_MINUTES),
        "load_minutes": sizing.load_minutes(settings.model) + overflow,
        "import_image": import_image(settings),
        "import_env": modelscope_intranet_env(settings.region),
    }


def system_pool(
    settings: AckFamilySettings,
    cluster: ManagedCluster,
    vswitches: Sequence[pulumi.Input[str]],
    tags: dict,
    opts: pulumi.ResourceOptions,
) -> NodePool:
    """Two small CPU nodes, one per zone: system pods, the model import and the benchmark."""
    return NodePool(
        f"{settings.name}-system",
        NodePoolArgs(
            cluster_id=cluster.cluster_id,
            pool_name="system",
            vswitch_ids=vswitches,
            instance_types=[settings.ack.system_instance_type],
            min_nodes=SYSTEM_NODES,
            max_nodes=SYSTEM_NODES,
            image_type=settings.ack.node_image_type,
            disk_category=SYSTEM_DISK_CATEGORY,
            tags=tags,
        ),
        opts=opts,
    )


def addons(base: Sequence[dict], sls_logging: bool) -> list[dict]:
    """Creation-time add-ons; logtail-ds (an SLS project made for the cluster) when logs go to SLS."""
    return [*base, {"name": "logtail-ds"}] if sls_logging else list(base)


def serve_and_autoscale(
    settings: AckFamilySettings,
    platform: serving.Platform,
    cluster: ManagedCluster,
    ns,
    store,
    api_key: pulumi.Output[str],
    in_cluster: pulumi.ResourceOptions,
    import_on: Sequence[pulumi.Resource],
    serving_after: Sequence[pulumi.Resource],
) -> dict:
    """ack and ack-edge alike: import on the system nodes, serve, autoscale, and ship logs when asked."""
    importer = serving.import_model(
        settings,
        platform,
        ns,
        store.import_claim,
        pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=import_on)),
    )
    volumes = serving.ModelVolumes(
        serving={"persistentVolumeClaim": {"claimName": store.serving_claim, "readOnly": True}},
        results={"persistentVolumeClaim": {"claimName": store.results_claim}},
    )
    workload, outputs = serving.serve(
        settings,
        platform,
        ns,
        volumes,
        importer,
        api_key,
        replicas_owned_by_hpa(settings, in_cluster),
        serving_depends_on=serving_after,
    )
    outputs.update(autoscale(settings, cluster, ns, in_cluster, workload))
    if settings.ack.sls_logging:
        outputs.update(collect_logs(settings, cluster.cluster_id, ns, in_cluster))
    return outputs


def replicas_owned_by_hpa(settings: AckFamilySettings, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """With an HPA, `pulumi up` sets the Deployment's replicas at creation only: re-applying scaling.replicas on
    every update would scale a busy service down to its minimum."""
    if not settings.ack.autoscaling.enabled:
        return opts

    def ignore_replicas(args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        if args.type_ not in (
            "kubernetes:apps/v1:Deployment",
            "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet",
        ):
            return None
        return pulumi.ResourceTransformationResult(
            args.props,
            pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])),
        )

    # `transformations` reach the component's children (the mock engine does not run `transforms`).
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transformations=[ignore_replicas]))


def autoscale(
    settings: AckFamilySettings, cluster: ManagedCluster, ns: pulumi.Output[str], opts: pulumi.ResourceOptions, workload
) -> dict[str, object]:
    """Managed Prometheus, the metrics adapter and the HPA, when scaling.maxReplicas > scaling.replicas."""
    scaling = settings.ack.autoscaling
    if not scaling.enabled:
        return {"autoscaling": f"off: {scaling.min_replicas} replica(s) (scaling.maxReplicas = scaling.replicas)"}
    metrics = ServingMetrics(
        f"{settings.name}-metrics",
        ServingMetricsArgs(
            cluster_id=cluster.cluster_id,
            namespace=ns,
            app=serving.APP,
            port_name=METRICS_PORT_NAME,
            metric=scaling.metric,
            region=settings.region,
        ),
        opts=opts,
    )
    multi_pod = settings.placement.pods > 1
    Autoscaler(
        f"{settings.name}-autoscaler",
        AutoscalerArgs(
            namespace=ns,
            name=serving.APP,
            target_api_version="leaderworkerset.x-k8s.io/v1" if multi_pod else "apps/v1",
            target_kind="LeaderWorkerSet" if multi_pod else "Deployment",
            target_name=serving.APP,
            metric_name=metrics.metric_name,
            target_average=scaling.target,
            min_replicas=scaling.min_replicas,
            max_replicas=scaling.max_replicas,
            scale_down_seconds=scaling.scale_down_seconds,
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[metrics, workload])),
    )
    return {
        "autoscaling": f"{scaling.min_replicas}-{scaling.max_replicas} replicas on {scaling.metric} "
        f"(target {scaling.target} per pod)"
    }


def collect_logs(
    settings: AckFamilySettings, cluster_id: pulumi.Output[str], ns: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> dict[str, object]:
    from components.alibaba.log_collection import LogCollection, LogCollectionArgs

    logs = LogCollection(
        f"{settings.name}-logs",
        LogCollectionArgs(
            project=pulumi.Output.concat("k8s-log-", cluster_id),
            namespace=ns,
            app=serving.APP,
            logstore=f"{settings.name}-serving",
        ),
        opts=opts,
    )
    return {"slsLogstore": logs.logstore}


def kubectl_hint(settings: ClusterSettings) -> str:
    return (
        "pulumi stack output kubeconfig --show-secrets > kubeconfig && "
        f"KUBECONFIG=kubeconfig kubectl -n {settings.workload.namespace} get pods,hpa"
    )


def cloud_helpers(system: NodePool) -> dict:
    """ack and ack-edge: the import and benchmark Jobs on the system pool, so they never land on an IDC node
    (which cannot reach the VPC-only PyPI mirror or the internal OSS endpoint; audit D7) nor hold a GPU."""
    # The system nodes (cluster.systemNodeInstanceType, 4 vCPU by default) allocate less than 4 CPUs, the
    # import's default request; the download is network-bound, 2 are plenty.
    return {"helper_node_selector": dict(system.labels), "import_cpu": 2}


def load_balancers(settings: AlibabaClusterSettings) -> dict:
    """Platform Service exposures on Alibaba Cloud: an intranet LB always, an internet one only when asked."""
    from components.kubernetes.serving_workload import ServiceExposure

    annotations = {ADDRESS_TYPE: "internet"}
    tls = settings.tls
    if tls is not None and tls.source == "alibaba-cas" and tls.certificate_id:
        # An HTTPS listener on the public CLB with the certificate; it sends plain HTTP to the pods inside the VPC
        # (kubernetes/cloud-provider-alibaba-cloud usage guide, "HTTPS requests are decrypted at the SLB";
        # ACK help doc 86531 "Configure a CLB instance by using annotations", protocol-port and cert-id).
        annotations |= {
            CLB_PROTOCOL_PORT: f"https:{settings.access.api_port}",
            CLB_CERT_ID: tls.certificate_id,
        }
    public = (
        ServiceExposure(
            annotations=annotations,
            source_ranges=settings.access.allowed_cidrs,
            external_traffic_policy="Local",
        )
        if settings.access.public
        else None
    )
    return {
        "private_service": ServiceExposure(annotations={ADDRESS_TYPE: "intranet"}),
        "public_service": public,
        **network_isolation(settings),
    }


def network_isolation(settings: AlibabaClusterSettings) -> dict:
    """Platform fields for the NetworkPolicies: the VPC (nodes, Terway pods, VPC clients, the intranet CLB's
    forwarded traffic) and the CLB's health-check and Layer-7 range may call the plain API port; the metrics port
    is read by ARMS Prometheus' agent in the cluster, or from the VPC (where ARMS' collectors run is not known
    here: any pod of the cluster and the VPC may read it, GET /metrics only)."""
    from components.kubernetes.network_policies import ALIBABA_LB_RANGE, Peer

    vpc = settings.network.vpc_cidr
    return {
        "private_ranges": (vpc, ALIBABA_LB_RANGE),
        "metrics_scrapers": (Peer(namespace_labels={}, pod_labels={}), Peer(cidr=vpc)),
    }


def cluster_zones(
    settings: AlibabaClusterSettings, provider: alicloud.Provider, instance_type: Optional[str]
) -> tuple[str, str]:
    """Two zones for a cluster's vSwitches; with `instance_type`, both must sell it now."""
    found = alicloud.get_zones(
        available_resource_creation="VSwitch",
        available_instance_type=instance_type,
        opts=pulumi.InvokeOptions(provider=provider),
    )
    zones = [z.id for z in found.zones]
    wanted = settings.cluster.zones
    what = f"vSwitches{' and ' + instance_type if instance_type else ''}"
    missing = [z for z in wanted if z not in zones]
    if missing:
        raise ConfigError(
            [
                Problem(
                    "network.zones",
                    list(wanted),
                    f"{missing} cannot host {what} now; zones that can: {zones}",
                    "pick two of those zones, or unset network.zones: pulumi config rm "
                    f"--path '{settings.namespace}:network.zones'",
                    settings.namespace,
                )
            ]
        )
    if not wanted and len(zones) < 2:
        raise ConfigError(
            [
                Problem(
                    "alicloud:region",
                    settings.region,
                    f"needs two zones with {what}; found {zones}",
                    "choose another region (pulumi config set alicloud:region ...), GPU kind "
                    "(placement.gpuKind) or instance type",
                    settings.namespace,
                )
            ]
        )
    return (wanted[0], wanted[1]) if wanted else (zones[0], zones[1])


def cluster_network(
    settings: AlibabaClusterSettings,
    zones: tuple[str, str],
    tags: dict,
    provider: alicloud.Provider,
    pod_vswitches: bool = True,
) -> Network:
    """The VPC of a cluster: node vSwitches in two zones, Terway pod vSwitches unless the CNI needs none."""
    plan = settings.cluster
    subnets = [
        Subnet("nodes-a", zones[0], plan.node_vswitch_cidrs[0]),
        Subnet("nodes-b", zones[1], plan.node_vswitch_cidrs[1]),
    ]
    if pod_vswitches:
        subnets += [
            Subnet("pods-a", zones[0], plan.pod_vswitch_cidrs[0]),
            Subnet("pods-b", zones[1], plan.pod_vswitch_cidrs[1]),
        ]
    return Network(
        settings.name,
        NetworkArgs(
            vpc_cidr=settings.network.vpc_cidr,
            subnets=subnets,
            ssh_cidrs=settings.access.ssh_cidrs,
            nat_egress=True,
            nat_bandwidth_mbps=settings.network.nat_bandwidth_mbps,
            nat_billing=settings.network.nat_billing,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )


def namespace_and_store(
    settings: AlibabaClusterSettings,
    cluster,
    tags: dict,
    opts: pulumi.ResourceOptions,
    auth: str,
    endpoint: Optional[str] = None,
):
    """The workload's namespace and the OSS model store.

    `auth`: "rrsa", or "access-key" where RRSA is not known to work.
    """
    import pulumi_kubernetes as k8s

    from components.alibaba.oss_model_store import OssModelStore, OssModelStoreArgs
    from components.kubernetes.hardening import pod_security_labels

    namespace = k8s.core.v1.Namespace(
        f"{settings.name}-namespace",
        metadata={
            "name": settings.workload.namespace,
            # Fluid's cache pods and its injected FUSE sidecar run in this namespace with whatever privileges Fluid
            # gives them (not known here): only "privileged" is sure to admit them, with warnings at baseline.
            "labels": {
                "app.kubernetes.io/managed-by": "pulumi",
                **pod_security_labels(host_paths=settings.model_store.fluid),
            },
        },
        opts=pulumi.ResourceOptions(provider=cluster.provider),
    )
    ns = namespace.metadata["name"]
    rrsa = auth == "rrsa"
    store = OssModelStore(
        f"{settings.name}-models",
        OssModelStoreArgs(
            region=settings.region,
            namespace=ns,
            model_prefix=MODEL_PREFIX,
            bucket_name=settings.model_store.bucket_name,
            retain=settings.model_store.retain,
            adopt=settings.model_store.adopt_bucket,
            auth=auth,
            endpoint=endpoint,
            oidc_provider_arn=cluster.oidc_provider_arn if rrsa else None,
            oidc_issuer_url=cluster.oidc_issuer_url if rrsa else None,
            volume_gib=max(100, int(settings.model.weights_gib * 1.2)),
            tags=tags,
        ),
        opts=opts,
    )
    return ns, store
