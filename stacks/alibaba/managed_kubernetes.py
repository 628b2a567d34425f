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
from components.kubernetes.serving_workload import METRICS_PORT_NAME
from core import durations, sizing
from core.config.ack import SYSTEM_DISK_CATEGORY, SYSTEM_NODES
from core.config.problems import ConfigError, Problem
from core.config.settings import AckFamilySettings, AlibabaClusterSettings, ClusterSettings
from core.ready_time import mirror_flows, mirror_sharing, worker_import_plan
from stacks import serving
from stacks.alibaba.common import announce_import

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


def api_server_access(settings: AlibabaClusterSettings) -> dict:
    """ManagedClusterArgs fields for the API server's whitelist: cluster.apiCidrs, the VPC, the credentials."""
    from components.alibaba.deployer_credentials import stack_credentials

    return {
        "api_cidrs": settings.cluster.api_cidrs,
        "vpc_cidr": settings.network.vpc_cidr,
        "region": settings.region,
        "credentials": stack_credentials(settings.provider),  # the same identity as the alicloud provider
    }


# ACS: each pod has 30 GiB of ephemeral storage, and an image takes at least twice its size there; more is
# declared by this annotation, billed as PL1 ESSD while the pod runs (ACS help "Increase temporary storage").
ACS_EXTRA_EPHEMERAL_STORAGE = "alibabacloud.com/extra-ephemeral-storage"
ACS_FREE_EPHEMERAL_GIB = 30
SCRATCH_GIB = 10  # logs, caches, the engine's compile cache


def acs_extra_ephemeral_gib(image_unpacked_gb: float, scratch_gib: int = SCRATCH_GIB) -> int:
    """Extra ephemeral storage an ACS pod needs beyond the free 30 GiB: twice the unpacked image plus scratch."""
    need = 2 * image_unpacked_gb / durations.GB_PER_GIB + scratch_gib
    return max(0, math.ceil(need - ACS_FREE_EPHEMERAL_GIB))


def bandwidth_deadlines(settings: AlibabaClusterSettings, gpu_capacity_minutes: float) -> dict:
    """Platform fields derived from network.natBandwidthMbps (core/durations.py): the serving pods' load estimate
    plus any image pull longer than the workload's fixed allowance."""
    from components.kubernetes.serving_workload import SCHEDULE_AND_PULL_MINUTES

    mbps = settings.network.nat_bandwidth_mbps
    pods = settings.placement.pods * settings.workload.replicas  # every pod of the first rollout pulls at once
    starting = durations.pod_start(mbps, pods, gpu_capacity_minutes)
    overflow = max(0, math.ceil(starting.minutes) - SCHEDULE_AND_PULL_MINUTES)
    load = sizing.load_minutes(settings.model, settings.placement.tensor_parallel)
    return {"load_minutes": load + overflow}


def import_deadline_minutes(settings: AlibabaClusterSettings, workers: int) -> int:
    """Each import worker's command timeout (core.durations.import_deadline_minutes, beside the image mirror's copy
    when there is one), at most what Cloud Assistant runs a command for."""
    from components.alibaba.cloud_assistant_worker import COMMAND_TIMEOUT_MAX_SECONDS

    mbps, cap = settings.network.nat_bandwidth_mbps, COMMAND_TIMEOUT_MAX_SECONDS // 60
    modelled = worker_import_plan(settings, workers).minutes
    if modelled > cap:
        raise ConfigError(
            [
                Problem(
                    "network.natBandwidthMbps",
                    mbps,
                    f"the model import is modelled at {modelled:.0f} min over {workers} worker(s) sharing the NAT, "
                    f"longer than a Cloud Assistant command may run ({cap} min)",
                    f"pulumi config set --path '{settings.namespace}:network.natBandwidthMbps' <more>, or deploy "
                    "where ModelScope serves the weights on the internal network: "
                    + ", ".join(durations.INTRA_CLOUD_REGIONS),
                    settings.namespace,
                )
            ]
        )
    return durations.import_deadline_minutes(settings.model, mbps, workers, modelled, cap, mirror_flows(settings))


MIRROR_DEADLINE_MARGIN = 2.0  # the copy's rate is the NAT's and the source registry's (core/durations.py)
MIRROR_DEADLINE_FLOOR_MINUTES = 30


def image_mirror(
    settings: AlibabaClusterSettings, provider: alicloud.Provider, network: Network, tags: dict, image: str
):
    """engine.mirror (acs, ack): the engine image copied into the user's ACR Enterprise Edition instance at t=0,
    beside the cluster (components/alibaba/image_mirror.py); None without it."""
    mirror = settings.image_mirror
    if mirror is None:
        return None
    from components.alibaba.cloud_assistant_worker import COMMAND_TIMEOUT_MAX_SECONDS
    from components.alibaba.image_mirror import ImageMirror, ImageMirrorArgs
    from components.alibaba.model_import_workers import progress_hint
    from stacks.progress import announce

    source_host = mirror.source.split("/", 1)[0]
    if settings.mainland_china and not source_host.endswith(".aliyuncs.com"):
        # The program's own mainland defaults avoid Docker Hub for this reason (core/versions.py).
        pulumi.log.warn(
            f"engine.mirror: the worker copies {mirror.source} through the NAT, and {source_host} is often not "
            "reachable from mainland China; if the copy fails, put the image into your instance yourself (e.g. with "
            "ACR's artifact subscription) and set engine.image to its VPC address instead (docs/image-mirror.md)"
        )
    plan = settings.model_store
    modelled = durations.image_mirror(settings.network.nat_bandwidth_mbps, mirror_sharing(settings))
    deadline = min(
        modelled.deadline(MIRROR_DEADLINE_MARGIN, MIRROR_DEADLINE_FLOOR_MINUTES), COMMAND_TIMEOUT_MAX_SECONDS // 60
    )
    result = ImageMirror(
        f"{settings.name}-mirror",
        ImageMirrorArgs(
            region=settings.region,
            instance_id=mirror.instance_id,
            registry=mirror.registry,
            namespace=mirror.namespace,
            repository=mirror.repository,
            tag=mirror.tag,
            source=mirror.source,
            vpc_id=network.vpc_id,
            vswitch_id=network.vswitch_ids["nodes-a"],
            security_group_id=network.security_group_id,
            instance_type=plan.import_instance_type,
            image_id=image,
            timeout_minutes=deadline,
            depends_on=network.snat_entries,  # the source registry is on the internet
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    announce(
        result.invocation,
        "the engine image mirror",
        modelled.minutes,
        result.instance_id.apply(lambda i: progress_hint(settings.region, [i])),
        [result.instance_id],
    )
    return result


def mirror_outputs(mirror) -> dict:
    if mirror is None:
        return {}
    return {"engineImageMirror": mirror.image, "imageMirrorWorker": mirror.instance_id}


def model_prefix(settings: AlibabaClusterSettings) -> str:
    """Where the model's objects are: what the serving volume (rooted at MODEL_PREFIX) shows at its id."""
    return f"{MODEL_PREFIX}/{settings.model.modelscope_id}"


def stream_access(settings: AlibabaClusterSettings, cluster: ManagedCluster, store, ns, tags: dict, opts):
    """modelStore.load stream (acs, ack): the RAM role, service account and credential process the serving pods
    stream the weights from OSS with (components/alibaba/oss_stream_access.py); None when they read the volume."""
    from core.config.storage import STREAM

    if settings.model_store.load != STREAM:
        return None
    from components.alibaba.oss_stream_access import OssStreamAccess, OssStreamAccessArgs

    return OssStreamAccess(
        f"{settings.name}-stream",
        OssStreamAccessArgs(
            namespace=ns,
            namespace_name=settings.workload.namespace,
            bucket=store.bucket,
            region=settings.region,
            model_prefix=model_prefix(settings),
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            tags=tags,
        ),
        opts=opts,
    )


def streaming_platform(access) -> dict:
    """Platform fields for streaming pods: their service account (the RAM role trusts it), the streamer's
    environment and read-only mounts, and HTTPS to OSS and STS; nothing without `access`."""
    if access is None:
        return {}
    return {
        "service_account": access.service_account,
        "env": access.env,
        "pod_mounts": access.mounts,
        "serving_egress": access.egress,
    }


def worker_image_id(settings: AlibabaClusterSettings, provider: alicloud.Provider) -> str:
    """The image of the short-lived workers (the import's, the mirror's): modelStore.importImageId, else the newest
    Ubuntu 22.04 that modelStore.importInstanceType runs. Looked up once per stack, for all of them."""
    from stacks.alibaba.common import ubuntu_image

    plan = settings.model_store
    return plan.import_image_id or ubuntu_image(
        settings, provider, plan.import_instance_type, key="modelStore.importImageId"
    )


def import_workers(
    settings: AlibabaClusterSettings,
    provider: alicloud.Provider,
    network: Network,
    store,
    tags: dict,
    image: str,
):
    """The import at t=0: ECS workers (on `image`, worker_image_id) that need the network (NAT) and the bucket, not
    the cluster."""
    from components.alibaba.model_import_workers import ModelImportWorkers, ModelImportWorkersArgs
    from components.alibaba.oss_model_store import internal_endpoint

    plan = settings.model_store
    workers = durations.import_workers(settings.model, plan.import_workers)
    importer = ModelImportWorkers(
        f"{settings.name}-import",
        ModelImportWorkersArgs(
            region=settings.region,
            bucket=store.bucket,
            endpoint=internal_endpoint(settings.region),  # the workers are in the VPC, whatever the pods use
            prefix=model_prefix(settings),
            model_id=settings.model.modelscope_id,
            revision=settings.model_revision,
            workers=workers,
            instance_type=plan.import_instance_type,
            image_id=image,
            vswitch_id=network.vswitch_ids["nodes-a"],
            security_group_id=network.security_group_id,
            timeout_minutes=import_deadline_minutes(settings, workers),
            # The hub is on the internet (the NAT); destroy removes the workers before it aborts the bucket's
            # incomplete uploads (store.cleanup) and deletes the bucket.
            depends_on=[*network.snat_entries, *store.cleanup],
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    announce_import(importer, settings.region, worker_import_plan(settings, workers).minutes)  # as the estimate has it
    return importer


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


def results_location(store) -> pulumi.Output[str]:
    """Where the results claim writes in the bucket (components.alibaba.oss_model_store RESULTS_PREFIX)."""
    from components.alibaba.oss_model_store import RESULTS_PREFIX

    return pulumi.Output.concat("oss://", store.bucket, f"/{RESULTS_PREFIX}/")


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
    importer,
    serving_after: Sequence[pulumi.Resource],
    stream_uri: Optional[pulumi.Input[str]] = None,
) -> dict:
    """ack and ack-edge alike: serve once the import workers are done, autoscale, and ship logs when asked.
    `stream_uri`: the engine streams the weights from it (stream_access) instead of reading the volume."""
    volumes = serving.ModelVolumes(
        serving={"persistentVolumeClaim": {"claimName": store.serving_claim, "readOnly": True}},
        results={"persistentVolumeClaim": {"claimName": store.results_claim}},
        results_location=results_location(store),
    )
    workload, outputs = serving.serve(
        settings,
        platform,
        ns,
        volumes,
        importer,
        api_key,
        serving.replicas_owned_by_autoscaler(settings, in_cluster),
        serving_depends_on=serving_after,
        stream_uri=stream_uri,
    )
    outputs.update(autoscale(settings, cluster, ns, in_cluster, workload))
    if settings.ack.sls_logging:
        outputs.update(collect_logs(settings, cluster.cluster_id, ns, in_cluster))
    return outputs


def autoscale(
    settings: AlibabaClusterSettings,
    cluster: ManagedCluster,
    ns: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
    workload,
) -> dict[str, object]:
    """acs, ack and ack-edge: Managed Service for Prometheus scrapes the engine and evaluates the alert rules, always;
    with scaling.maxReplicas > scaling.replicas also the metrics adapter and the HPA (ACK's "Configure auto scaling
    for ... LLM inference services"; ACS's "Implement horizontal auto scaling based on Prometheus metrics",
    doc-detail/2584624: the same add-on and Helm chart)."""
    scaling = settings.autoscaling
    metrics = ServingMetrics(
        f"{settings.name}-metrics",
        ServingMetricsArgs(
            cluster_id=cluster.cluster_id,
            namespace=ns,
            namespace_name=settings.workload.namespace,
            app=serving.APP,
            port_name=METRICS_PORT_NAME,
            metric=scaling.metric if scaling.enabled else None,
            region=settings.region,
        ),
        opts=opts,
    )
    outputs: dict[str, object] = {
        "metrics": f"Managed Service for Prometheus of cluster {settings.name}: PodMonitor {serving.APP}-engine, "
        f"{len(metrics.alert_rules)} alert rules; dashboard: import dashboards/vllm.json into its Grafana"
    }
    if not scaling.enabled:
        return {**outputs, **serving.autoscaling_off(settings)}
    serving.hpa(settings, ns, metrics.metric_name, opts, depends_on=[metrics, workload])
    return {**outputs, **serving.autoscaling_output(settings, "ack-alibaba-cloud-metrics-adapter")}


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
    """ack and ack-edge: the benchmark Job on the system pool, so it never lands on an IDC node (which cannot
    reach the VPC-only PyPI mirror or the internal OSS endpoint; audit D7) nor holds a GPU."""
    return {"helper_node_selector": dict(system.labels)}


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
    ns = workload_namespace(settings, cluster)
    return ns, model_store(settings, cluster, tags, opts, auth, endpoint, ns)


def workload_namespace(settings: AlibabaClusterSettings, cluster) -> pulumi.Output[str]:
    """The workload's namespace, with its Pod Security labels (ack-edge makes it in its first run already, for the
    engine image's pre-pull: the same resource in both runs)."""
    import pulumi_kubernetes as k8s

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
    return namespace.metadata["name"]


def model_store(
    settings: AlibabaClusterSettings,
    cluster,
    tags: dict,
    opts: pulumi.ResourceOptions,
    auth: str,
    endpoint: Optional[str],
    namespace: Optional[pulumi.Output[str]],
):
    """The OSS model store; without a namespace the bucket only (ack-edge's first run, before the cluster takes
    volumes: the same component, so the second run adds the volumes to the same bucket)."""
    from components.alibaba.deployer_credentials import stack_credentials
    from components.alibaba.oss_model_store import OssModelStore, OssModelStoreArgs

    rrsa = auth == "rrsa"
    return OssModelStore(
        f"{settings.name}-models",
        OssModelStoreArgs(
            region=settings.region,
            namespace=namespace,
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
            credentials=stack_credentials(settings.provider),  # the multipart cleanup's, on destroy
        ),
        opts=opts,
    )
