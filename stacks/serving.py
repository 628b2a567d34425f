"""The part every Kubernetes target shares: import the model once, serve it, benchmark it, outputs.

A target brings a Kubernetes provider, a namespace and a model store, plus what its platform adds to
the pods (ACS labels, tolerations, load balancer annotations); everything else is decided here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional, Protocol, Union

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.autoscaler import Autoscaler, AutoscalerArgs
from components.kubernetes.benchmark_job import REPORT_FILE, BenchmarkArgs, BenchmarkJob
from components.kubernetes.model_import import CPU as IMPORT_CPU
from components.kubernetes.model_import import ModelImport, ModelImportArgs
from components.kubernetes.network_policies import (
    LWS_NAME_LABEL,
    LWS_WORKER_INDEX_LABEL,
    Egress,
    NetworkPolicies,
    NetworkPoliciesArgs,
    Peer,
)
from components.kubernetes.serving_workload import (
    GATEWAY_POD_PORT,
    GATEWAY_TLS_POD_PORT,
    SHUTDOWN_SECONDS,
    TLS_CERT_ITEM,
    TLS_KEY_ITEM,
    Gateway,
    HostMount,
    PodMount,
    ServiceExposure,
    ServingArgs,
    ServingWorkload,
)
from core import durations, gateway, sizing
from core.config.settings import ClusterSettings
from core.config.storage import STREAM
from core.engine import MODEL_URI_REF, STREAMER_LOG_ENV, STREAMER_LOG_LINE, build_command, stream_load
from stacks.client import api_base, client_outputs, warn_plain_http
from stacks.progress import announce, modelled_minutes


class JobImporter(Protocol):
    """A one-time model import the serving workload waits for: its Job (ModelImport's in the cluster, or gke's
    Cloud Run job, HfGcsImport) is ready once the import has succeeded."""

    @property
    def job(self) -> pulumi.CustomResource: ...


class WorkerImporter(Protocol):
    """A model import outside the cluster (components.alibaba.model_import_workers): serving waits for its
    Cloud Assistant invocations."""

    @property
    def invocations(self) -> Sequence[pulumi.Resource]: ...


Importer = Union[JobImporter, WorkerImporter]


def import_done(importer: Importer) -> list[pulumi.Resource]:
    """What the serving workload (and a cache warmed from the store) waits for: the Job, or the invocations."""
    invocations = getattr(importer, "invocations", None)
    return list(invocations) if invocations is not None else [importer.job]  # type: ignore[union-attr]


MODEL_MOUNT = "/models"
APP = "llm"


@dataclass(frozen=True)
class Platform:
    """What the target's platform adds to the shared workload."""

    pod_labels: Mapping[str, str] = field(default_factory=dict)  # serving pods only (never selectors)
    helper_pod_labels: Mapping[str, str] = field(default_factory=dict)  # CPU pods: model import, benchmark
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, object]] = ()
    private_service: Optional[ServiceExposure] = None
    public_service: Optional[ServiceExposure] = None
    pip_index_url: str = "https://pypi.org/simple/"
    # Rolling updates start the new pod before stopping the old one: right where GPUs are provisioned
    # per pod (ACS); on fixed GPU nodes without a spare GPU the new pod would never schedule.
    surge_updates: bool = True
    # Extra plain engine environment (e.g. gke's vLLM settings; Alibaba's streamer: a RAM role's ARN, an output).
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    host_mounts: Sequence[HostMount] = ()  # node directories for the GPU containers (e.g. gke's NCCL gIB plugin)
    pod_mounts: Sequence[PodMount] = ()  # other read-only volumes for them (e.g. Alibaba's streamer credentials)
    # Helper pods (model import, benchmark): where they may run (e.g. ack-edge: cloud nodes only, not the IDC),
    # and what their platform needs on them (e.g. ACS ephemeral storage).
    helper_node_selector: Mapping[str, str] = field(default_factory=dict)
    helper_pod_annotations: Mapping[str, str] = field(default_factory=dict)
    # The startup window's load estimate from the platform's bandwidth (core/durations.py), plus a pull longer
    # than allowed; None: the conservative default (core.sizing).
    load_minutes: Optional[int] = None
    # The serving pods' service account (e.g. gke's, which the bucket trusts, when the engine streams from it).
    service_account: Optional[str] = None
    # NetworkPolicies (components/kubernetes/network_policies.py): who may call the plain API port besides the
    # cluster's pods (the VPC, load balancer health checks), who scrapes the metrics port (default: any pod of the
    # cluster, for a Prometheus whose namespace is not known), and what the serving pods may send to beyond DNS.
    private_ranges: Sequence[str] = ()
    metrics_scrapers: Sequence[Peer] = (Peer(namespace_labels={}, pod_labels={}),)
    serving_egress: Sequence[Egress] = ()
    helper_egress: Sequence[Egress] = ()
    open_unlabelled_pods: bool = False  # acs.fluid: Fluid's cache pods in the namespace


@dataclass(frozen=True)
class ModelVolumes:
    """Where serving reads the weights (read-only), and where benchmark results go."""

    serving: Mapping[str, object]  # a volume source
    results: Optional[Mapping[str, object]] = None  # benchmark results, None: the Job's log only
    ready: Sequence[pulumi.Resource] = ()  # e.g. Fluid's DataLoad
    results_location: Optional[pulumi.Input[str]] = None  # where the results volume is, e.g. gs://<bucket>/benchmarks/


@dataclass(frozen=True)
class HubDownload:
    """The engine downloads the model from Hugging Face into the model volume at every start (no import Job).

    The serving volume is then scratch space (e.g. an emptyDir on local SSD) and the startup probe
    allows for the download as well as the load.
    """

    model_id: str  # Hugging Face repo id
    revision: str
    token_secret: Optional[pulumi.Input[str]] = None  # Secret with key HF_TOKEN; None: anonymous
    env: Mapping[str, str] = field(default_factory=dict)  # e.g. HF_HUB_ENABLE_HF_TRANSFER


def model_path(settings: ClusterSettings) -> str:
    return f"{MODEL_MOUNT}/{settings.model.modelscope_id}"


def download_minutes(settings: ClusterSettings) -> int:
    """The model download at the conservative rate (core.sizing.DOWNLOAD_GIB_PER_MIN)."""
    return math.ceil(settings.model.weights_gib / sizing.DOWNLOAD_GIB_PER_MIN)


def import_timeout_minutes(settings: ClusterSettings) -> int:
    """The import Job's deadline (kubernetes): the import as the duration model has it at the cluster's assumed
    egress (core.durations.model_import, CLUSTER_EGRESS_MBPS), doubled, at least 30 minutes."""
    return durations.model_import(settings.model, durations.CLUSTER_EGRESS_MBPS.value).deadline(2, 30)


def import_model(
    settings: ClusterSettings,
    platform: Platform,
    namespace: pulumi.Input[str],
    claim: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> ModelImport:
    """The one-time download of the model into the store by a Job in the cluster (the `kubernetes` target; the
    Alibaba cluster targets import on ECS workers instead: components/alibaba/model_import_workers.py)."""
    return ModelImport(
        f"{settings.name}-import",
        ModelImportArgs(
            namespace=namespace,
            claim=claim,
            model_id=settings.model.modelscope_id,
            revision=settings.model_revision,
            sub_path=settings.model.modelscope_id,
            image=settings.engine.image,
            timeout_minutes=import_timeout_minutes(settings),
            pip_index_url=platform.pip_index_url,
            pod_labels=platform.helper_pod_labels,
            pod_annotations=platform.helper_pod_annotations,
            node_selector=platform.helper_node_selector,
            cpu=IMPORT_CPU,
        ),
        opts=opts,
    )


def serve(
    settings: ClusterSettings,
    platform: Platform,
    namespace: pulumi.Input[str],
    volumes: ModelVolumes,
    importer: Optional[Importer],
    api_key: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
    serving_depends_on: Sequence[pulumi.Resource] = (),
    download: Optional[HubDownload] = None,
    stream_uri: Optional[pulumi.Input[str]] = None,
) -> tuple[ServingWorkload, dict[str, object]]:
    """The serving workload (after the import, or downloading at start), the optional benchmark, the outputs.

    `importer` is None only with `download`: the engine fetches the model itself.
    `stream_uri`: the model's object-store URI (e.g. gs://bucket/models/<id>) for modelStore.load stream, where
    the target streams from its store; the serving pods then mount no model volume (the benchmark still does, for
    the tokenizer). Streaming without it reads the mounted volume.
    """
    if (importer is None) == (download is None):
        raise ValueError("serve() needs exactly one of importer (model store) and download (at start)")
    tls = settings.tls
    public_service = platform.public_service
    if tls is not None and public_service is not None:
        public_service = dataclasses.replace(public_service, https=True)
    tls_secret = tls_secret_for(settings, namespace, opts) if tls is not None and tls.at_gateway else None
    policies = isolate(
        settings,
        platform,
        namespace,
        tls_secret is not None,
        download is not None,
        opts,
        import_pods=isinstance(importer, ModelImport),
    )
    placement, workload, engine_options = settings.placement, settings.workload, settings.engine
    streaming = settings.model_store.load == STREAM
    if stream_uri is not None and (not streaming or download is not None):
        raise ValueError("stream_uri is for modelStore.load stream from the store, not with a download at start")
    multi_node = placement.pods > 1
    stream = (
        stream_load(engine_options, stream_uri is not None, placement.tensor_parallel, multi_node, workload.memory_gib)
        if streaming
        else None
    )
    # Served from the store's path, or from the Hub id with the download into the model volume, or streamed from
    # the store's URI (a reference to the environment: a generated bucket name is known only at deploy time).
    path = model_path(settings) if download is None else download.model_id
    engine_path = MODEL_URI_REF if stream_uri is not None else path
    engine = build_command(
        engine_options,
        settings.model,
        engine_path,
        placement.tensor_parallel,
        placement.pipeline_parallel,
        gpu_has_bf16=placement.gpu.bf16,
        multi_node=multi_node,
        behind_gateway=True,
        shutdown_timeout_seconds=SHUTDOWN_SECONDS,
        stream=stream,
    )
    load_minutes = platform.load_minutes or sizing.load_minutes(settings.model, placement.tensor_parallel)
    env, secret_env = dict(platform.env), {}
    if stream is not None:
        env.update(STREAMER_LOG_ENV)  # the streamer's time and rate in the engine's log
    if download is not None:
        engine = dataclasses.replace(
            engine, argv=(*engine.argv, "--download-dir", MODEL_MOUNT, "--revision", download.revision)
        )
        load_minutes += download_minutes(settings)
        env.update(download.env)
        if download.token_secret is not None:
            secret_env["HF_TOKEN"] = (download.token_secret, "HF_TOKEN")
    serving = ServingWorkload(
        settings.name,
        ServingArgs(
            namespace=namespace,
            app=APP,
            image=engine_options.image,
            engine=engine,
            gateway=Gateway(
                image=settings.gateway.image,
                port=settings.access.api_port,
                read_timeout_seconds=gateway.generation_timeout_seconds(engine_options.max_model_len),
                max_body_bytes=gateway.max_body_bytes(engine_options.max_model_len),
                routes=settings.gateway.routes,
                tls=tls_secret is not None,
            ),
            tls_secret=tls_secret,
            api_key=api_key,
            model_volume=None if stream_uri is not None else volumes.serving,
            model_mount_path=MODEL_MOUNT,
            model_uri=stream_uri,
            service_account=platform.service_account,
            gpus_per_pod=placement.gpus_per_pod,
            pods_per_replica=placement.pods,
            replicas=workload.replicas,
            cpu=workload.cpu,
            memory_gib=workload.memory_gib,
            shm_gib=workload.shm_gib,
            load_minutes=load_minutes,
            pod_labels=platform.pod_labels,
            pod_annotations=platform.pod_annotations,
            node_selector=platform.node_selector,
            tolerations=platform.tolerations,
            private_service=platform.private_service,
            public_service=public_service,
            surge_updates=platform.surge_updates,
            env=env,
            secret_env=secret_env,
            host_mounts=platform.host_mounts,
            pod_mounts=platform.pod_mounts,
            download_at_start=download is not None,
            depends_on=[
                *(import_done(importer) if importer is not None else []),
                *volumes.ready,
                *serving_depends_on,
                policies,
            ],
        ),
        opts=opts,
    )
    # The pods wait for GPU capacity, pull the engine image and load the model: minutes to an hour on one row.
    # kubectl logs resolves a Deployment to its pods, not a custom resource: a LeaderWorkerSet's leaders by label.
    follow_engine = f"-l {LWS_NAME_LABEL}={APP},{LWS_WORKER_INDEX_LABEL}=0" if placement.pods > 1 else f"deploy/{APP}"
    announce(
        serving,
        "the serving pods: GPU capacity, the engine image, the model's load",
        modelled_minutes(settings, "GPU capacity", "engine image", "engine load"),
        pulumi.Output.concat(
            "kubectl -n ",
            namespace,
            " get pods -l app=",
            APP,
            " -w; then kubectl -n ",
            namespace,
            f" logs -f {follow_engine} -c engine",
        ),
        # Once the import is done (its ids are known only then); a download at start has none to wait for.
        [namespace, *(r.id for r in import_done(importer) if isinstance(r, pulumi.CustomResource))]
        if importer is not None
        else [namespace],
    )
    port = serving.port
    if settings.benchmark.enabled:
        BenchmarkJob(
            f"{settings.name}-benchmark",
            BenchmarkArgs(
                namespace=namespace,
                image=engine_options.image,
                base_url=pulumi.Output.concat(
                    "http://", serving.service_name, ".", namespace, f".svc.cluster.local:{port}"
                ),
                # With a download at start there is no shared copy: the benchmark fetches the tokenizer by id.
                served_model_name=engine_options.served_model_name,
                model_path=path,
                model_volume=volumes.serving,
                model_mount_path=MODEL_MOUNT,
                api_key_secret=serving.secret_name,
                api_key_secret_key=engine.api_key_env,
                config=settings.benchmark,
                pip_index_url=platform.pip_index_url,
                results_volume=volumes.results,
                pod_labels=platform.helper_pod_labels,
                pod_annotations=platform.helper_pod_annotations,
                node_selector=platform.helper_node_selector,
                hf_token_secret=download.token_secret if download is not None else None,
                depends_on=[serving],
                report_model=settings.model.name,
                report_gpu=placement.gpu.name,
            ),
            opts=opts,
        )
    outputs = client_outputs(
        model_name=engine_options.served_model_name,
        engine=engine_options.engine,
        api_key=api_key,
        private_base=api_base(serving.private_address, port),
        public_base=(
            api_base(serving.public_address, port, https=tls is not None, hostname=tls.hostname if tls else None)
            if serving.public_address is not None
            else None
        ),
    )
    if settings.benchmark.enabled:
        outputs["benchmarkReport"] = (
            pulumi.Output.concat(volumes.results_location, REPORT_FILE)
            if volumes.results is not None and volumes.results_location is not None
            else "none: no results volume on this target, the results are in the benchmark Job's log"
        )
    warn_plain_http(settings)
    outputs.update(
        {
            "target": settings.target,
            "namespace": settings.workload.namespace,
            "gpus": (f"{workload.replicas} x {placement.pods} pod(s) x {placement.gpus_per_pod}x {placement.gpu.name}"),
            "engine": engine_options.engine,
            "engineImage": engine_options.image,
            "modelPath": path if stream_uri is None else stream_uri,
            "modelLoad": _load_description(stream_uri is not None, streaming),
            "loadMinutesEstimate": load_minutes,
        }
    )
    return serving, outputs


def _load_description(from_store: bool, streaming: bool) -> str:
    """The modelLoad output: how the engine reads the weights, and where its log shows the progress."""
    if not streaming:
        return "mount: the default loader reads the mounted store (docs/loading.md)"
    where = "from the object store" if from_store else "from the mounted volume"
    return f"stream {where} (Run:ai Model Streamer); progress in the engine log: '{STREAMER_LOG_LINE}'"


# --- Autoscaling, the same on every target --------------------------------------------------------------------


def scale_target(settings: ClusterSettings) -> tuple[str, str, str]:
    """(apiVersion, kind, name) of what the autoscaler scales: the Deployment, or the LeaderWorkerSet of a copy over
    several pods (its scale subresource counts groups)."""
    if settings.placement.pods > 1:
        return "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", APP
    return "apps/v1", "Deployment", APP


def replicas_owned_by_autoscaler(settings: ClusterSettings, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """With an autoscaler, `pulumi up` sets the workload's replicas at creation only: re-applying scaling.replicas
    on every update would scale a busy service down to its minimum."""
    if not settings.autoscaling.enabled:
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


def autoscaling_off(settings: ClusterSettings) -> dict[str, object]:
    return {
        "autoscaling": f"off: {settings.autoscaling.min_replicas} replica(s) (scaling.maxReplicas = scaling.replicas)"
    }


def autoscaling_output(settings: ClusterSettings, through: str) -> dict[str, object]:
    scaling = settings.autoscaling
    return {
        "autoscaling": f"{scaling.min_replicas}-{scaling.max_replicas} replicas on {scaling.metric} "
        f"(target {scaling.target} per pod) through {through}"
    }


def hpa(
    settings: ClusterSettings,
    namespace: pulumi.Input[str],
    metric_name: str,
    opts: pulumi.ResourceOptions,
    depends_on: Sequence[pulumi.Resource],
) -> Autoscaler:
    """The HPA on the per-pod custom metric `metric_name`, as the target's metrics adapter names it."""
    scaling = settings.autoscaling
    api_version, kind, name = scale_target(settings)
    return Autoscaler(
        f"{settings.name}-autoscaler",
        AutoscalerArgs(
            namespace=namespace,
            name=APP,
            target_api_version=api_version,
            target_kind=kind,
            target_name=name,
            metric_name=metric_name,
            target_average=scaling.target,
            min_replicas=scaling.min_replicas,
            max_replicas=scaling.max_replicas,
            scale_down_seconds=scaling.scale_down_seconds,
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(depends_on))),
    )


def tls_secret_for(
    settings: ClusterSettings, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """The kubernetes.io/tls Secret the gateway serves HTTPS from: the stack's PEM (a Pulumi secret end to end, in
    an immutable Secret named after a hash of its content, so a new certificate rolls the pods), or the one
    cert-manager writes for a Certificate from the named issuer (renewed in place; see docs/security.md)."""
    tls = settings.tls
    assert tls is not None and tls.at_gateway
    labels = {"app": APP, "app.kubernetes.io/managed-by": "pulumi"}
    if tls.source == "cert-manager":
        secret_name = f"{APP}-tls"
        certificate = k8s.apiextensions.CustomResource(
            f"{settings.name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": f"{APP}-api", "namespace": namespace, "labels": labels},
            spec={
                "secretName": secret_name,
                "dnsNames": [tls.hostname],
                "issuerRef": {"name": tls.issuer, "kind": tls.issuer_kind, "group": "cert-manager.io"},
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "usages": ["server auth", "digital signature", "key encipherment"],
            },
            opts=opts,
        )
        return pulumi.Output.all(certificate.id).apply(lambda _: secret_name)
    assert tls.certificate is not None and tls.key is not None
    certificate, key = tls.certificate.reveal(), tls.key.reveal()
    import hashlib

    digest = hashlib.sha256((certificate + "\0" + key).encode()).hexdigest()[:10]
    secret = k8s.core.v1.Secret(
        f"{settings.name}-tls",
        metadata={"name": f"{APP}-tls-{digest}", "namespace": namespace, "labels": labels},
        type="kubernetes.io/tls",
        immutable=True,
        string_data={
            TLS_CERT_ITEM: pulumi.Output.secret(certificate),
            TLS_KEY_ITEM: pulumi.Output.secret(key),
        },
        opts=opts,
    )
    return secret.metadata.name


# The Hugging Face Hub (a download at start) and the like: HTTPS anywhere.
HTTPS_ANYWHERE = Egress(to=(Peer(cidr="0.0.0.0/0"),), tcp_ports=(443,))


def most_replicas(settings: ClusterSettings) -> int:
    """The most copies the stack may run: an autoscaler's maximum, else scaling.replicas."""
    autoscaling = settings.autoscaling
    if autoscaling.enabled:
        return max(autoscaling.max_replicas, settings.workload.replicas)
    return settings.workload.replicas


def isolate(
    settings: ClusterSettings,
    platform: Platform,
    namespace: pulumi.Input[str],
    tls_at_gateway: bool,
    downloads: bool,
    opts: pulumi.ResourceOptions,
    import_pods: bool = False,
) -> NetworkPolicies:
    """The namespace's NetworkPolicies, before any pod starts (components/kubernetes/network_policies.py)."""
    public = settings.access.public
    return NetworkPolicies(
        f"{settings.name}-network",
        NetworkPoliciesArgs(
            namespace=namespace,
            app=APP,
            api_port=GATEWAY_POD_PORT,
            metrics_port=gateway.METRICS_PORT,
            private_sources=[
                Peer(namespace_labels={}, pod_labels={}),
                *(Peer(cidr=c) for c in platform.private_ranges),
            ],
            scrapers=list(platform.metrics_scrapers),
            public_cidrs=settings.access.allowed_cidrs if public else (),
            public_port=(GATEWAY_TLS_POD_PORT if tls_at_gateway else GATEWAY_POD_PORT) if public else None,
            lws_groups=most_replicas(settings) if settings.placement.pods > 1 else 0,
            pods_per_group=settings.placement.pods,
            serving_egress=[*platform.serving_egress, *([HTTPS_ANYWHERE] if downloads else [])],
            helper_egress=list(platform.helper_egress),
            open_unlabelled_pods=platform.open_unlabelled_pods,
            import_pods=import_pods,
            benchmark_pods=settings.benchmark.enabled,
        ),
        opts=opts,
    )
