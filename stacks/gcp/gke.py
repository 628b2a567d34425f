"""Target `gke`: a GKE cluster with a GPU node pool serving one model copy per node, on the smallest catalog
machine that holds the model (G2 L4, A3 High H100, A3 Ultra H200, A4 B200: core.catalog.GKE_MACHINES); the
GKE A4 recipe serves DeepSeek-R1 on an A4 node, or a copy over a group of A4 nodes over RDMA (gke.rdma,
placement.podsPerReplica).

The weights are imported once from Hugging Face into a private GCS bucket by a Cloud Run job that starts
as soon as the bucket exists, beside the cluster and the GPU pool (components/gcp/hf_gcs_import.py,
docs/targets/gke-import.md), and read by the serving pods through GCS FUSE, with a file cache on the
node's local SSD, instead of ~700 GB downloaded at every pod start (gke.modelSource download keeps the
A4 recipe's download at start). The engine image is pulled through an Artifact Registry remote repository
of Docker Hub in the cluster's region, with GKE image streaming on the GPU nodes. The API has an internal
load balancer in the VPC, plus a public one with access.public.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.api_key import ApiKey
from components.gcp.custom_metrics_adapter import CustomMetricsAdapter, CustomMetricsAdapterArgs, prometheus_metric
from components.gcp.docker_hub_mirror import DockerHubMirror, DockerHubMirrorArgs, proxied_image
from components.gcp.gcs_model_store import (
    MODEL_SERVICE_ACCOUNT,
    MODEL_WRITER_ACCOUNT,
    MODELS_DIR,
    RESULTS_DIR,
    GcsModelStore,
    GcsModelStoreArgs,
    gcsfuse_pod_transformation,
    gcsfuse_volume,
)
from components.gcp.gke_cluster import GkeCluster, GkeClusterArgs
from components.gcp.gpu_node_pool import GPU_TOLERATION, POOL_LABEL, GpuNodePool, GpuNodePoolArgs
from components.gcp.hf_gcs_import import MAX_TASK_TIMEOUT_HOURS, HfGcsImport, HfGcsImportArgs
from components.gcp.observability import alert_rules, dashboard
from components.gcp.pod_monitoring import serving_pod_monitoring
from components.gcp.rdma import POD_ENV as RDMA_POD_ENV
from components.gcp.rdma import POD_HOST_MOUNTS as RDMA_POD_HOST_MOUNTS
from components.gcp.rdma import RdmaClusterObjects, RdmaNetworks, RdmaNetworksArgs, pod_network_annotations
from components.kubernetes.hardening import pod_security_labels
from components.kubernetes.image_prepull import ImagePrepull, ImagePrepullArgs
from components.kubernetes.leader_worker_set import WEBHOOK_PORT as LWS_WEBHOOK_PORT
from components.kubernetes.leader_worker_set import LeaderWorkerSetController
from components.kubernetes.network_policies import Egress, Peer
from components.kubernetes.serving_workload import LWS_WORKER_INDEX_LABEL, ServiceExposure
from core import durations, sizing, versions
from core.catalog import FLEX_START
from core.config.gke import FLEX_START_MIN_GKE, NODE_CIDR, at_least, version_key
from core.config.problems import ConfigError, Problem
from core.config.settings import GkeTargetSettings
from core.config.storage import STREAM
from core.gateway import METRICS_PORT
from stacks import serving
from stacks.gcp import cost as gke_cost
from stacks.progress import announce, modelled_minutes
from stacks.providers import provider_args

APIS = (
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
    "artifactregistry.googleapis.com",
    "monitoring.googleapis.com",
    "logging.googleapis.com",
    # Already on before the stack runs (projects.Service itself reads the project through it: README
    # "Before the first gke run"); listed so a later `pulumi destroy` of another stack cannot be what turns it off.
    "cloudresourcemanager.googleapis.com",
    # Workload identity federation tokens (the pods' access to the bucket). Whether GKE needs these enabled
    # by hand is not settled by any source found; enabling them is free and harmless.
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
    # The model import's Cloud Run job (components/gcp/hf_gcs_import.py).
    "run.googleapis.com",
    # GKE image streaming: "You must enable the Container File System API" (GKE how-to image-streaming).
    "containerfilesystem.googleapis.com",
)
# Only with a Hugging Face token: the import job reads it from Secret Manager.
SECRETS_API = "secretmanager.googleapis.com"
# Image streaming with a node service account of the stack's own: "you must ensure that the custom service account
# has the Service Usage Consumer (roles/serviceusage.serviceUsageConsumer) IAM role in the project that hosts the
# container image" (GKE how-to image-streaming, Requirements).
STREAMING_ROLE = "roles/serviceusage.serviceUsageConsumer"
# How much longer than the modelled import a task may take (the figures are assumed), at least 30 minutes.
IMPORT_MARGIN = 3
IMPORT_FLOOR_MINUTES = 30
# The GKE A4 recipe's engine environment; HF_HUB_ENABLE_HF_TRANSFER is left out: serving reads the bucket
# offline, the import (a Cloud Run job) does the download.
ENGINE_ENV = {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}
# Download at start (gke.modelSource download), as the A4 recipe: hf_transfer's parallel download. vLLM's image
# installs hf_transfer (its Dockerfile); for files Hugging Face stores with Xet,
# huggingface_hub downloads through hf_xet instead and this has no effect (whether R1's are is not known).
DOWNLOAD_ENV = {"HF_HUB_ENABLE_HF_TRANSFER": "1"}
INTERNAL_LB = "networking.gke.io/load-balancer-type"
BACKEND_SERVICE_LB = "cloud.google.com/l4-rbs"


def build(settings: GkeTargetSettings) -> dict[str, object]:
    gke = settings.gke
    # The stack's gcp:* config (credentials, impersonation, ...), with the checked project, region and zone.
    provider = gcp.Provider(
        "gcp",
        **provider_args(settings.provider, gcp.ProviderArgs, project=gke.project, region=gke.region, zone=gke.zone),
    )
    in_project = pulumi.ResourceOptions(provider=provider)
    project_number = _check_prerequisites(settings, provider)
    labels = {"app": "llm-serving", "stack": _label(settings.stack)}
    importing = gke.model_source == "bucket"
    needed = (*APIS, *((SECRETS_API,) if importing and gke.hf_token is not None else ()))
    services = {
        api: gcp.projects.Service(
            f"{settings.name}-{api.split('.')[0]}",
            project=gke.project,
            service=api,
            # Other workloads of the project may need the API after this stack is gone.
            disable_on_destroy=False,
            opts=in_project,
        )
        for api in needed
    }
    apis = list(services.values())
    # The channel's version, checked once the GKE API is on; the cluster takes its channel through the check.
    release_channel = _checked_channel(settings, provider, services["container.googleapis.com"])
    rdma = (
        RdmaNetworks(
            f"{settings.name}-net",
            RdmaNetworksArgs(project=gke.project, region=gke.region, zone=gke.zone, depends_on=apis),
            opts=in_project,
        )
        if gke.rdma
        else None
    )
    cluster = GkeCluster(
        settings.name,
        GkeClusterArgs(
            project=gke.project,
            region=gke.region,
            zone=gke.zone,
            node_cidr=gke.node_cidr,
            pod_cidr=gke.pod_cidr,
            service_cidr=gke.service_cidr,
            release_channel=release_channel,
            workload_pool=gke.workload_pool,
            deletion_protection=settings.deletion_protection,
            labels=labels,
            depends_on=apis,
            multi_networking=rdma is not None,
            control_plane_cidrs=gke.control_plane_cidrs,
            # A copy over several nodes installs LeaderWorkerSet, whose webhook the control plane must reach.
            webhook_ports=(LWS_WEBHOOK_PORT,) if settings.placement.pods > 1 else (),
            maintenance_window_start=gke.maintenance_window_start,
            hold_node_upgrades=gke.hold_node_upgrades,
        ),
        opts=in_project,
    )
    # Image streaming on the GPU nodes reads the image through the Container File System API as the nodes' account.
    streaming_role = gcp.projects.IAMMember(
        f"{settings.name}-node-streaming",
        project=gke.project,
        role=STREAMING_ROLE,
        member=pulumi.Output.concat("serviceAccount:", cluster.node_service_account),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=apis),
    )
    pool = GpuNodePool(
        f"{settings.name}-gpu",
        GpuNodePoolArgs(
            project=gke.project,
            cluster=cluster.cluster.id,
            region=gke.region,
            zone=gke.zone,
            machine=gke.machine,
            node_count=gke.node_count,
            max_node_count=gke.max_node_count,
            capacity=gke.capacity,
            service_account=cluster.node_service_account,
            labels=labels,
            additional_networks=rdma.node_network_configs() if rdma is not None else (),
            # Nodes start with their service account's roles, as the system pool's do.
            depends_on=[*apis, cluster.node_role, streaming_role],
            network_tags=(cluster.node_tag,),
        ),
        opts=in_project,
    )
    announce(
        pool,
        f"the GPU node pool ({gke.machine.name}, {gke.capacity.mode})",
        modelled_minutes(settings, "GPU pool"),
        cluster.cluster.name.apply(
            lambda c: (
                f"gcloud container operations list --region {gke.region} --project {gke.project} "
                f'--filter="targetLink~{c} AND status=RUNNING" (or kubectl get nodes -w)'
            )
        ),
        [cluster.cluster.id],
    )
    repository_id = f"{settings.name}-dockerhub"
    mirror = DockerHubMirror(
        f"{settings.name}-registry",
        DockerHubMirrorArgs(
            project=gke.project,
            region=gke.region,
            repository_id=repository_id,
            reader=pulumi.Output.concat("serviceAccount:", cluster.node_service_account),
            depends_on=apis,
        ),
        opts=in_project,
    )
    image = proxied_image(settings.engine.image, gke.project, gke.region, repository_id) or settings.engine.image
    settings = dataclasses.replace(settings, engine=dataclasses.replace(settings.engine, image=image))

    # Every Kubernetes object of the stack: through the cluster's provider, with the GCS FUSE sidecar annotations
    # and identity where a pod mounts the bucket (components.gcp.gcs_model_store), and deleted with the cluster.
    in_cluster = pulumi.ResourceOptions(
        provider=cluster.provider,
        transformations=[gcsfuse_pod_transformation, _deleted_with(cluster.cluster)],
    )
    namespace = k8s.core.v1.Namespace(
        f"{settings.name}-namespace",
        metadata={
            "name": settings.workload.namespace,
            # A copy over several nodes mounts the node's NCCL gIB plugin (hostPath): privileged, else baseline.
            "labels": {
                "app.kubernetes.io/managed-by": "pulumi",
                **pod_security_labels(host_paths=settings.placement.pods > 1),
            },
        },
        opts=in_cluster,
    )
    ns = namespace.metadata["name"]
    serving_needs: list[pulumi.Resource] = []  # the RDMA network objects, the LWS controller
    if rdma is not None:
        serving_needs.append(RdmaClusterObjects(f"{settings.name}-rdma", rdma, opts=in_cluster))
    store = GcsModelStore(
        f"{settings.name}-models",
        GcsModelStoreArgs(
            project=gke.project,
            region=gke.region,
            project_number=project_number,
            workload_pool=gke.workload_pool,
            namespace=ns,
            bucket_name=settings.model_store.bucket_name,
            retain=settings.model_store.retain,
            adopt=settings.model_store.adopt_bucket,
            labels=labels,
            depends_on=apis,
            # The workload identity pool <project>.svc.id.goog that the bindings name comes with the cluster; the
            # bucket does not wait for it, so the import starts at once.
            principals_ready=[cluster.cluster],
        ),
        opts=in_project,
    )
    # The identities of the pods that mount the bucket, reading or writing (the transformation sets them on the
    # pods); no API token.
    model_accounts = [
        k8s.core.v1.ServiceAccount(
            f"{settings.name}-{resource}",
            metadata={"name": account, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
            automount_service_account_token=False,
            opts=in_cluster,
        )
        for resource, account in (("model-account", MODEL_SERVICE_ACCOUNT), ("model-writer", MODEL_WRITER_ACCOUNT))
    ]
    # What the pods need before they start: their identity and its bucket grant, and the nodes' grant to pull the
    # image through the repository (which the grant itself waits for).
    ready = [store.reader_binding, store.writer_binding, *model_accounts, mirror.reader]
    api_key = ApiKey(f"{settings.name}-api-key", settings.api_key)

    source = _model_source(settings, ns, store, mirror, labels, apis, in_project, in_cluster)
    importer, download, model_volume = source
    multi_node = settings.placement.pods > 1  # only with RDMA (core.config.parse)
    if multi_node:
        serving_needs.append(LeaderWorkerSetController(f"{settings.name}-lws", opts=in_cluster))
    # The engine image onto each GPU node as soon as it is up, while the import may still run.
    ImagePrepull(
        f"{settings.name}-prepull",
        ImagePrepullArgs(
            namespace=ns,
            image=image,
            node_selector=POOL_LABEL,
            tolerations=[GPU_TOLERATION],
            depends_on=[mirror.reader],
        ),
        opts=in_cluster,
    )
    streaming = download is None and settings.model_store.load == STREAM
    platform = _platform(settings, multi_node, streaming)
    volumes = serving.ModelVolumes(
        serving=model_volume,
        results=gcsfuse_volume(store.bucket, RESULTS_DIR, read_only=False, file_cache=False),
        results_location=pulumi.Output.concat("gs://", store.bucket, f"/{RESULTS_DIR}/"),
    )
    # vLLM's metrics into Cloud Monitoring: the serving pods (a copy over several pods: its leader, which serves
    # the API and the metrics), on the gateway's metrics port.
    serving_pod_monitoring(
        f"{settings.name}-metrics",
        ns,
        {"app": serving.APP, **({LWS_WORKER_INDEX_LABEL: "0"} if multi_node else {})},
        METRICS_PORT,
        opts=in_cluster,
    )
    alert_rules(f"{settings.name}-alerts", ns, settings.workload.namespace, opts=in_cluster)
    board = dashboard(
        f"{settings.name}-dashboard",
        gke.project,
        settings.workload.namespace,
        f"LLM serving {settings.stack} ({settings.workload.namespace})",
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[services["monitoring.googleapis.com"]]),
    )
    workload, outputs = serving.serve(
        settings,
        platform,
        ns,
        volumes,
        importer,
        api_key.value,
        serving.replicas_owned_by_autoscaler(settings, in_cluster),
        # Not the GPU pool: the serving pods wait in Pending for their node (the rollout wait allows for it), and
        # nothing deleted through the Kubernetes API may depend on the pool, or a destroy that cannot reach the
        # API server would never get to delete the GPU nodes.
        serving_depends_on=[*ready, *serving_needs],
        download=download,
        stream_uri=stream_uri(store.bucket, settings.model.modelscope_id) if streaming else None,
    )
    outputs.update(_autoscale(settings, ns, project_number, workload, in_cluster, in_project))
    outputs["dashboard"] = pulumi.Output.concat(
        "https://console.cloud.google.com/monitoring/dashboards/builder/",
        board.id.apply(lambda i: i.rsplit("/", 1)[-1]),
        f"?project={gke.project}",
    )
    outputs.update(
        {
            "project": gke.project,
            "region": gke.region,
            "zone": gke.zone,
            "costEstimate": gke_cost.gke_estimate(settings),
            "clusterName": cluster.cluster.name,
            "gpuNodePool": pool.pool.name,  # README "Destroy": what to delete by hand if the API cannot be reached
            "modelBucket": store.bucket,
            "benchmarkResults": pulumi.Output.concat("gs://", store.bucket, f"/{RESULTS_DIR}/"),
            "imageRepository": mirror.repository.name,
            **(_import_outputs(importer, gke.region, gke.project) if importer is not None else {}),
            "kubeconfig": cluster.kubeconfig,  # no credential inside: gke-gcloud-auth-plugin supplies it
            "kubectlHint": pulumi.Output.concat(
                "gcloud container clusters get-credentials ",
                cluster.cluster.name,
                f" --region {gke.region} --project {gke.project} && kubectl -n ",
                settings.workload.namespace,
                " get pods",
            ),
        }
    )
    return outputs


def _autoscale(
    settings: GkeTargetSettings,
    ns,
    project_number: pulumi.Input[str],
    workload,
    opts: pulumi.ResourceOptions,
    project_opts: pulumi.ResourceOptions,
) -> dict[str, object]:
    """scaling.maxReplicas > scaling.replicas: the Custom Metrics Stackdriver Adapter and an HPA on the PodMonitoring
    series of the queue (GKE "Best practices for autoscaling LLM inference workloads with GPUs": queue size;
    accelerated-platforms scales vLLM on vllm:num_requests_waiting the same way). The GPU pool grows with the
    pods (components.gcp.gpu_node_pool pool_size)."""
    if not settings.autoscaling.enabled:
        return serving.autoscaling_off(settings)
    gke = settings.gke
    adapter = CustomMetricsAdapter(
        f"{settings.name}-custom-metrics",
        CustomMetricsAdapterArgs(project=gke.project, project_number=project_number, workload_pool=gke.workload_pool),
        opts=opts,
        project_opts=project_opts,
    )
    serving.hpa(settings, ns, prometheus_metric(settings.autoscaling.metric), opts, depends_on=[adapter, workload])
    return {
        **serving.autoscaling_output(settings, "the Custom Metrics Stackdriver Adapter"),
        "gpuNodes": f"{gke.node_count}-{gke.max_node_count} (node pool autoscaling, {gke.capacity.mode})",
    }


def _model_source(
    settings: GkeTargetSettings,
    ns,
    store: GcsModelStore,
    mirror: DockerHubMirror,
    labels: dict[str, str],
    apis: list[gcp.projects.Service],
    in_project: pulumi.ResourceOptions,
    in_cluster: pulumi.ResourceOptions,
) -> tuple[Optional[HfGcsImport], Optional[serving.HubDownload], dict]:
    """The import into the bucket (a Cloud Run job) and the GCS FUSE volume, or (download mode) local SSD scratch."""
    gke = settings.gke
    revision = _hf_revision(settings.model_revision)
    if gke.model_source == "download":
        # The A4 recipe's mode: no import, vLLM downloads from Hugging Face into local SSD at every start.
        download = serving.HubDownload(
            model_id=settings.model.hf_id,
            revision=revision,
            token_secret=_hf_token_secret(settings, ns, in_cluster),
            env=DOWNLOAD_ENV,
        )
        return None, download, {"emptyDir": {"sizeLimit": f"{sizing.disk_gib(settings.model)}Gi"}}
    tasks, task_timeout, wait = import_deadlines(settings)
    importer = HfGcsImport(
        f"{settings.name}-import",
        HfGcsImportArgs(
            project=gke.project,
            region=gke.region,
            bucket=store.bucket,
            model_id=settings.model.hf_id,
            revision=revision,
            prefix=f"{MODELS_DIR}/{settings.model.modelscope_id}",
            image=proxied_image(versions.IMPORT_IMAGE.value, gke.project, gke.region, mirror.repository_id)
            or versions.IMPORT_IMAGE.value,
            workers=tasks,
            task_timeout_minutes=task_timeout,
            wait_minutes=wait,
            account_id=_account_id(f"{settings.name}-import"),
            token=pulumi.Output.secret(gke.hf_token.reveal()) if gke.hf_token is not None else None,
            labels=labels,
            depends_on=apis,
            image_ready=[mirror.repository],
        ),
        opts=in_project,
    )
    return importer, None, gcsfuse_volume(store.bucket, MODELS_DIR, read_only=True, file_cache=True)


def stream_uri(bucket: pulumi.Input[str], model_dir: str) -> pulumi.Output[str]:
    """Where the import job leaves the weights (HfGcsImport's prefix under MODELS_DIR), as the streamer's URI."""
    return pulumi.Output.concat("gs://", bucket, f"/{MODELS_DIR}/{model_dir}")


def _import_outputs(importer: HfGcsImport, region: str, project: str) -> dict[str, object]:
    """The import job's name and how to follow it (docs/targets/gke-import.md)."""
    where = f" --region {region} --project {project}"
    return {
        "modelImportJob": importer.job.name,
        "modelImportLogsHint": pulumi.Output.concat("gcloud beta run jobs logs tail ", importer.job.name, where),
    }


def import_deadlines(settings: GkeTargetSettings) -> tuple[int, int, int]:
    """The import's tasks, each attempt's timeout and how long `pulumi up` waits (minutes), from the duration model:
    a task may take IMPORT_MARGIN times its modelled share (at least IMPORT_FLOOR_MINUTES, at most Cloud Run's 168
    hours); `pulumi up` waits for one full retry of a task besides, and for the tasks to start."""
    tasks = durations.gke_import_tasks(settings.model, settings.gke.import_tasks)
    plan = durations.gke_import(settings.model, tasks)
    task_timeout = min(plan.deadline(IMPORT_MARGIN, IMPORT_FLOOR_MINUTES), MAX_TASK_TIMEOUT_HOURS * 60)
    return tasks, task_timeout, 2 * task_timeout + math.ceil(durations.CLOUD_RUN_START_MIN.value)


def _account_id(name: str) -> str:
    """A service account id: 6-30 characters, a lowercase letter first, no '-' last (IAM naming rules)."""
    account = re.sub(r"[^a-z0-9-]", "-", name.lower())[:30].rstrip("-")
    return account if re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", account) else f"llm-{account}"[:30].rstrip("-")


# NetworkPolicy peers on GKE (Dataplane V2 enforces them). Managed Prometheus' collectors run in the gmp-system
# namespace (Google Cloud Managed Service for Prometheus, "managed collection": a DaemonSet there scrapes what
# PodMonitorings select). Pods reach Google APIs on 443 (the GCS FUSE sidecar, the streamer, the Hub) and the GKE
# metadata server for Workload Identity tokens: 169.254.169.254:80, and 169.254.169.252:988 where GKE's
# network-policy page says to allow it for Workload Identity (that page was not read here: both are allowed).
GMP_NAMESPACE = {"kubernetes.io/metadata.name": "gmp-system"}  # the label Kubernetes puts on every namespace
METADATA_EGRESS = (
    Egress(to=(Peer(cidr="169.254.169.254/32"),), tcp_ports=(80,)),
    Egress(to=(Peer(cidr="169.254.169.252/32"),), tcp_ports=(988,)),
)


def _platform(settings: GkeTargetSettings, multi_node: bool, streaming: bool = False) -> serving.Platform:
    """What GKE adds to the shared workload: GPU node placement, the load balancers, and RDMA for multi-node copies.

    streaming: the engine reads gs:// itself (modelStore.load stream), so no GCS FUSE volume gives the pods their
    identity: they run as the bucket's reader account, whose workload identity principal the streamer's GCS client
    finds through Application Default Credentials (the GKE metadata server).
    """
    workload, pods = settings.workload, settings.placement.pods
    return serving.Platform(
        service_account=MODEL_SERVICE_ACCOUNT if streaming else None,
        # The subnet's nodes: internal load balancer clients in the VPC, and traffic a node forwards with its own
        # address (externalTrafficPolicy Cluster); the cluster's pods are allowed by selector.
        private_ranges=(NODE_CIDR,),
        metrics_scrapers=(Peer(namespace_labels=GMP_NAMESPACE, pod_labels={}),),
        serving_egress=(serving.HTTPS_ANYWHERE, *METADATA_EGRESS),
        helper_egress=METADATA_EGRESS,
        tolerations=[GPU_TOLERATION],
        node_selector=POOL_LABEL,
        # A copy over several nodes: NCCL over the RDMA NICs through the gIB plugin.
        env={**ENGINE_ENV, **(RDMA_POD_ENV if multi_node else {})},
        pod_annotations=pod_network_annotations() if multi_node else {},
        host_mounts=RDMA_POD_HOST_MOUNTS if multi_node else (),
        # A new serving pod (group) needs whole free GPU nodes: surge only when the pool has them to spare.
        surge_updates=max(settings.gke.node_count, settings.gke.max_node_count) >= (workload.replicas + 1) * pods,
        # A VPC address for clients in the network, as acs's intranet load balancer gives (GKE internal
        # passthrough Network Load Balancer); the public one only with access.public.
        private_service=ServiceExposure(annotations={INTERNAL_LB: "Internal"}),
        # The public one as a backend service-based external passthrough Network Load Balancer: without the
        # annotation GKE builds a target pool-based one, which its Service page calls no longer recommended
        # (GKE how-to external-svc-lb-rbs: needs GKE >= 1.25.5 and the HttpLoadBalancing add-on, on by default).
        public_service=(
            ServiceExposure(annotations={BACKEND_SERVICE_LB: "enabled"}, source_ranges=settings.access.allowed_cidrs)
            if settings.access.public
            else None
        ),
    )


def _check_prerequisites(settings: GkeTargetSettings, provider: gcp.Provider) -> str:
    """The project's number, read through Cloud Resource Manager: the one lookup before anything is enabled.

    Cloud Resource Manager and Service Usage must be on before the first run: projects.Service calls Service
    Usage and reads the project through Cloud Resource Manager (terraform-provider-google
    resource_google_project_service.go), so no stack can enable them for itself. A project where they are off
    (or credentials that cannot read it) is refused here, at preview, with the command that fixes it.
    """
    gke = settings.gke
    try:
        project = gcp.organizations.get_project(project_id=gke.project, opts=pulumi.InvokeOptions(provider=provider))
    except Exception as error:  # the provider's error text: SERVICE_DISABLED, PERMISSION_DENIED, not found
        raise ConfigError(
            [
                Problem(
                    "gcp:project",
                    gke.project,
                    "cannot be read through the Cloud Resource Manager API, which (with Service Usage) must be "
                    f"on before the first run, for credentials that may read the project ({_first_line(error)})",
                    f"gcloud services enable cloudresourcemanager.googleapis.com serviceusage.googleapis.com "
                    f"--project {gke.project} (with user credentials also in their quota project: "
                    "gcloud auth application-default set-quota-project), and check gcp:project",
                    settings.namespace,
                )
            ]
        ) from None
    if not project.number:
        raise ConfigError(
            [Problem("gcp:project", gke.project, "has no project number", "check gcp:project", settings.namespace)]
        )
    return project.number


def _checked_channel(
    settings: GkeTargetSettings, provider: gcp.Provider, container_api: gcp.projects.Service
) -> pulumi.Output[str]:
    """The release channel, once its default version is known to run the GPU machine (core.catalog: A4 needs
    GKE >= 1.32.4-gke.1236000, A3 Ultra 1.31.7-gke.1265000; G2 and A3 High name no minimum).

    The lookup calls the GKE API, so it waits for the API's projects.Service: on a new project the first
    preview skips it (the engine leaves the result unknown until the API exists) and `pulumi up` checks it
    before the cluster, whose release channel goes through this check.
    """
    gke = settings.gke
    versions = gcp.container.get_engine_versions_output(
        location=gke.region,
        project=gke.project,
        opts=pulumi.InvokeOutputOptions(provider=provider, depends_on=[container_api]),
    )

    # The newest of what the machine and the capacity mode need (Flex-start: GKE 1.32.2-gke.1652000).
    needs_by = {gke.machine.name: gke.machine.min_gke_version}
    if gke.capacity.mode == FLEX_START:
        needs_by["Flex-start"] = FLEX_START_MIN_GKE
    known: dict[str, str] = {who: v for who, v in needs_by.items() if v}
    needs, minimum = max(known.items(), key=lambda item: version_key(item[1])) if known else ("", None)

    def check(defaults: Optional[dict]) -> str:
        default = (defaults or {}).get(gke.release_channel)
        if not default or (minimum is not None and not at_least(default, minimum)):
            raise ConfigError(
                [
                    Problem(
                        "gke.releaseChannel",
                        gke.release_channel,
                        f"creates clusters at {default or 'no version'} in {gke.region}; {needs} needs "
                        f"{minimum} or newer",
                        f"pulumi config set --path '{settings.namespace}:gke.releaseChannel' RAPID",
                        settings.namespace,
                    )
                ]
            )
        return gke.release_channel

    return versions.release_channel_default_version.apply(check)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _hf_token_secret(settings: GkeTargetSettings, ns, opts: pulumi.ResourceOptions):
    """The Hugging Face token as a Kubernetes Secret (from the Pulumi secret); None without a token."""
    if settings.gke.hf_token is None:
        return None
    secret = k8s.core.v1.Secret(
        f"{settings.name}-hf-token",
        metadata={"name": "hf-token", "namespace": ns},
        type="Opaque",
        string_data={"HF_TOKEN": pulumi.Output.secret(settings.gke.hf_token.reveal())},
        opts=opts,
    )
    return secret.metadata["name"]


def _deleted_with(cluster: gcp.container.Cluster):
    """A transformation: `pulumi destroy` skips the Kubernetes API for objects the cluster's deletion removes anyway
    (Pulumi's deleted_with), so an unreachable API server (no gke-gcloud-auth-plugin, cluster.apiCidrs no longer
    covering the operator) cannot hold them, and the pools and cluster behind them, in place. Except LoadBalancer
    Services: GKE deletes their forwarding rules and firewall rules when the Service goes, not with the cluster.
    The Helm release of LeaderWorkerSet included, whose delete ignores the provider's delete_unreachable."""

    def transform(args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        if not args.type_.startswith("kubernetes:") or args.type_.startswith("pulumi:providers:"):
            return None
        spec = args.props.get("spec")
        if args.type_ == "kubernetes:core/v1:Service" and isinstance(spec, dict) and spec.get("type") == "LoadBalancer":
            return None
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(deleted_with=cluster))
        )

    return transform


def _hf_revision(revision: str) -> str:
    """ModelScope's default branch is `master`; Hugging Face's is `main`."""
    return "main" if revision == "master" else revision


def _label(value: str) -> str:
    """A GCP label value: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]
