"""Each target's `pulumi up`, as its stack composes it, as a timeline of slow steps (core/timeline.py).

The order of the tasks here is the order the stacks impose (a `depends_on`, a Job the workload waits for, a pod
that needs a node); when a stack changes its order, its timeline here changes with it, and tests/test_timeline.py
checks the stack's deadlines against it. `scripts/ready-time.py` prints every example stack's.
"""

from __future__ import annotations

from typing import Optional

from core import durations as d
from core import sizing
from core.config.settings import AckEdgeSettings, ClusterSettings, EcsSettings, GkeTargetSettings, Settings
from core.config.storage import STREAM
from core.engine import stream_load
from core.targets import ACK, ACK_EDGE, ACS, ECS, GKE, KUBERNETES
from core.timeline import API, Task, Timeline
from core.versions import VLLM_IMAGE, VLLM_IMAGE_CN


def _step(name: str, minutes: float, after: tuple[str, ...], figure: d.Figure | str) -> Task:
    return Task(name, minutes, after, figure.source if isinstance(figure, d.Figure) else figure)


def _plan_tasks(prefix: str, plan: d.Plan, after: tuple[str, ...]) -> list[Task]:
    """A duration plan's steps as tasks one after another, the first after `after`."""
    tasks, previous = [], after
    for step in plan.steps:
        tasks.append(Task(f"{prefix}: {step.name}", step.minutes, previous, step.source))
        previous = (tasks[-1].name,)
    return tasks


def ecs(settings: EcsSettings) -> Timeline:
    """One host: the network, then the host's first boot (components/scripts/bootstrap.sh) until ready.sh passes,
    from what it starts with (settings.ecs.start: a prepared image, the weights in the region, a VPC registry).
    With ecs.preparedImage.build, Image Builder makes the image beside it: `pulumi up` waits for that too, the API
    does not."""
    host = settings.ecs
    plan = d.ecs_readiness(settings.model, host.egress_mbps, host.start)
    tasks = [*_plan_tasks("host", plan, ()), Task(API, 0.0, (f"host: {plan.steps[-1].name}",))]
    if host.weights.imported:
        # ecs.weights.source import: the workers start with the network and its NAT; the host's weights step
        # (core.durations.ecs_readiness) already waits until they are done (start.import_minutes).
        tasks += [
            _step("network", d.NETWORK_MIN.value + d.NAT_MIN.value, (), d.NETWORK_MIN),
            *_import_tasks(host.weights.import_workers, ecs_import_plan(settings), ("network",)),
        ]
    if host.prepared_image.build:
        build = d.prepared_image_build(host.egress_mbps, host.start.image_in_region)
        tasks += _plan_tasks("prepared image", build, ())
    return Timeline(ECS, tuple(tasks))


# Markers (0 minutes) every Kubernetes timeline has, so the deadlines can be checked the same way on every target:
IMPORT_START, IMPORT_DONE = "import starts", "import done"  # the import Job (or workers) run between them
SERVING_START, SERVING_READY = "serving starts", "engine load"  # the serving workload is created, is ready
# The private LoadBalancer Service, created with the serving workload (components/kubernetes/serving_workload.py):
# its load balancer provisions while the pods pull and load; the API answers once both are done.
PRIVATE_LB = "private load balancer"


# The object store a target streams from (core.durations.engine_load's figure for it).
STREAM_STORES = {GKE: "gs", ACS: "oss", ACK: "oss"}


def stream_ranks(settings: ClusterSettings) -> int:
    """How many processes stream the weights at once (core.durations.engine_load), 0 when nothing streams from an
    object store: the distributed load's tensor-parallel ranks (core.engine.stream_load), else one."""
    if settings.target not in STREAM_STORES or settings.model_store.load != STREAM:
        return 0  # kubernetes streams from its volume, whose throughput is not known: the mount figure stays
    placement = settings.placement
    stream = stream_load(
        settings.engine, True, placement.tensor_parallel, placement.pods > 1, settings.workload.memory_gib
    )
    return placement.tensor_parallel if stream.distributed else 1


def _engine_load(settings: ClusterSettings, after: tuple[str, ...], warm_cache: bool = False) -> Task:
    load = d.engine_load(
        settings.model,
        stream_ranks(settings),
        settings.placement.tensor_parallel,
        STREAM_STORES.get(settings.target, "gs"),
        warm_cache=warm_cache,
    )
    return Task(SERVING_READY, load.minutes, after, load.source)


def _serving(
    settings: ClusterSettings,
    mbps: float,
    capacity_minutes: float,
    after: tuple[str, ...],
    cache: tuple[str, ...] = (),
) -> list[Task]:
    """The serving pods (GPU capacity, the engine image, every pod of the first rollout at once), the load; with a
    `cache` task, the load reads the filled cache and is counted from when it is filled, if that is later."""
    pods = settings.placement.pods * settings.workload.replicas
    pull = d.engine_image_pull(settings.engine.image, settings.region, mbps, pods)
    return [
        Task(SERVING_START, 0.0, after, "the serving workload is created"),
        _step("GPU capacity", capacity_minutes, (SERVING_START,), d.GPU_CAPACITY_MIN),
        Task("engine image", pull.minutes, ("GPU capacity",), f"{pull.name}: {pull.source}"),
        _engine_load(settings, ("engine image", *cache), warm_cache=bool(cache)),
    ]


FLUID_READY, CACHE_FILLED = "Fluid", "cache filled"


def _fluid(settings: ClusterSettings, after: tuple[str, ...]) -> tuple[list[Task], tuple[str, ...], tuple[str, ...]]:
    """acs.fluid: the chart once the cluster exists (the serving workload waits for its cache objects), then the
    cache filled once the import is done (stacks/alibaba/acs.py); nothing without Fluid (which the config never
    streams past, core.config.storage.FLUID_NO_STREAM). Returns the tasks, what serving waits for, and what the load
    waits for."""
    if not settings.model_store.fluid:
        return [], (), ()
    workers = sizing.fluid_workers(sizing.fluid_cache_gib(settings.model))
    fill = d.fluid_warm_up(settings.model, workers)
    tasks = [
        _step(FLUID_READY, d.FLUID_INSTALL_MIN.value, after, d.FLUID_INSTALL_MIN),
        *_plan_tasks("cache", fill, (FLUID_READY, IMPORT_DONE)),
    ]
    done = Task(CACHE_FILLED, 0.0, (tasks[-1].name,), "the DataLoad is complete")
    return [*tasks, done], (FLUID_READY,), (CACHE_FILLED,)


def _import(settings: ClusterSettings, mbps: float, after: tuple[str, ...]) -> list[Task]:
    plan = d.model_import(settings.model, mbps)
    tasks = _plan_tasks("import", plan, (IMPORT_START,))
    return [
        Task(IMPORT_START, 0.0, after, "the import Job is created"),
        *tasks,
        Task(IMPORT_DONE, 0.0, (tasks[-1].name,), "the import Job completes"),
    ]


def mirror_flows(settings: ClusterSettings) -> int:
    """The image mirror's copy on the NAT beside the import workers' downloads (1), or none (0)."""
    return 1 if getattr(settings, "image_mirror", None) is not None else 0


def mirror_sharing(settings: ClusterSettings) -> int:
    """How many flows the mirror's copy shares the NAT with, itself included: the import workers too, unless
    ModelScope serves them over the internal network."""
    if d.intra_cloud(settings.region):
        return 1
    return 1 + d.import_workers(settings.model, settings.model_store.import_workers)


MIRROR_DONE = "mirror done"


def _mirror(settings: ClusterSettings, after: tuple[str, ...]) -> tuple[list[Task], tuple[str, ...]]:
    """engine.mirror: the mirror worker beside the cluster (components/alibaba/image_mirror.py), and what the
    serving workload then waits for as well; nothing without a mirror."""
    if not mirror_flows(settings):
        return [], ()
    plan = d.image_mirror(settings.network.nat_bandwidth_mbps, mirror_sharing(settings))
    tasks = _plan_tasks("mirror", plan, after)
    done = Task(MIRROR_DONE, 0.0, (tasks[-1].name,), "the mirror worker's Cloud Assistant invocation succeeded")
    return [*tasks, done], (MIRROR_DONE,)


def worker_import_plan(settings: ClusterSettings, workers: int) -> d.Plan:
    """The import workers' shares, through the NAT beside the image mirror's copy when there is one: what the
    estimate, each worker's deadline and its progress hint all use (stacks/alibaba/managed_kubernetes.py)."""
    return d.worker_import(
        settings.model,
        settings.network.nat_bandwidth_mbps,
        workers,
        settings.region,
        other_flows=mirror_flows(settings),
    )


def ecs_import_plan(settings: EcsSettings) -> d.Plan:
    """ecs.weights.source import: one worker's share, as core.config.host.resolve_host modelled the host's wait
    with it: what the timeline and each worker's progress hint use (stacks/alibaba/ecs.py)."""
    host = settings.ecs
    return d.ecs_import(settings.model, host.egress_mbps, host.weights.import_workers, settings.region, host.start)


def _workers(settings: ClusterSettings, after: tuple[str, ...]) -> list[Task]:
    """The import workers (components/alibaba/model_import_workers.py), side by side, each with its share: they
    start with the network (the NAT) and the bucket, beside the cluster; serving waits for their invocations."""
    workers = d.import_workers(settings.model, settings.model_store.import_workers)
    return _import_tasks(workers, worker_import_plan(settings, workers), after)


def _import_tasks(workers: int, plan: d.Plan, after: tuple[str, ...]) -> list[Task]:
    tasks = _plan_tasks(f"import ({workers} worker{'s' if workers > 1 else ''})", plan, (IMPORT_START,))
    return [
        Task(IMPORT_START, 0.0, after, "the import workers are created"),
        *tasks,
        Task(IMPORT_DONE, 0.0, (tasks[-1].name,), "every worker's Cloud Assistant invocation succeeded"),
    ]


def acs(settings: ClusterSettings) -> Timeline:
    """Network and NAT; the ACS cluster beside the import workers; the serving pods once both are done."""
    mbps = settings.network.nat_bandwidth_mbps
    mirror, mirrored = _mirror(settings, ("network",))
    fluid, fluid_ready, cache_filled = _fluid(settings, ("ACS cluster",))
    tasks = [
        _step("network", d.NETWORK_MIN.value + d.NAT_MIN.value, (), d.NETWORK_MIN),
        _step("ACS cluster", d.ACS_CLUSTER_MIN.value, ("network",), d.ACS_CLUSTER_MIN),
        *_workers(settings, ("network",)),
        *mirror,
        *fluid,
        *_serving(
            settings,
            mbps,
            d.GPU_CAPACITY_MIN.value,
            (IMPORT_DONE, "ACS cluster", *mirrored, *fluid_ready),
            cache_filled,
        ),
        _step(PRIVATE_LB, d.LB_ALIBABA_MIN.value, (SERVING_START,), d.LB_ALIBABA_MIN),
    ]
    return Timeline(ACS, (*tasks, Task(API, 0.0, (PRIVATE_LB, SERVING_READY))))


def ack(settings: ClusterSettings) -> Timeline:
    """ACK Pro and its pools beside the import workers; serving after the GPU pool and the import. Each GPU node
    starts pulling the engine image when it joins (the pre-pull DaemonSet, stacks/alibaba/ack.py), before ACK ends
    the pool's task and whether or not the import is done; the model still starts the pull with the serving pods:
    how much earlier a node joins is not known, and an import outside ModelScope's region would share the NAT."""
    mbps = settings.network.nat_bandwidth_mbps
    mirror, mirrored = _mirror(settings, ("network",))
    tasks = [
        _step("network", d.NETWORK_MIN.value + d.NAT_MIN.value, (), d.NETWORK_MIN),
        _step("ACK cluster", d.ACK_CLUSTER_MIN.value, ("network",), d.ACK_CLUSTER_MIN),
        _step("system pool", d.CPU_POOL_MIN.value, ("ACK cluster",), d.CPU_POOL_MIN),
        _step("GPU pool", d.GPU_POOL_MIN.value, ("ACK cluster",), d.GPU_POOL_MIN),
        *_workers(settings, ("network",)),
        *mirror,
        *_serving(settings, mbps, 0.0, (IMPORT_DONE, "GPU pool", *mirrored)),
        _step(PRIVATE_LB, d.LB_ALIBABA_MIN.value, (SERVING_START,), d.LB_ALIBABA_MIN),
    ]
    return Timeline(ACK, (*tasks, Task(API, 0.0, (PRIVATE_LB, SERVING_READY))))


def ack_edge(settings: ClusterSettings, nodes_joined_minutes_before: Optional[float] = None) -> Timeline:
    """The second run: the network, cluster, system pool, bucket and the imported weights exist (the first run,
    `ackEdge.clusterOnly`, ran the import workers beside the cluster: ack_edge_first_run), so serving on the IDC
    nodes starts at once; the workers are unchanged and not run again.

    The engine image: the first run's pre-pull DaemonSet (stacks/alibaba/ack_edge.py) starts pulling on each IDC node
    when it joins, between the runs, so the second run waits only for what is left of that pull. The modelled
    assumption (the ack-edge goal is its second run's): the nodes joined `nodes_joined_minutes_before` the second
    run, by default at least one modelled pull earlier, so nothing is left. With 0 (joined as the run starts) the
    whole pull is on the path again; the serving deadlines allow for that case (tests/test_timeline.py)."""
    mbps = settings.network.nat_bandwidth_mbps
    serving = _serving(settings, mbps, 0.0, ())
    pull = next(t for t in serving if t.name == "engine image")
    lead = pull.minutes if nodes_joined_minutes_before is None else nodes_joined_minutes_before
    remaining = Task(
        "engine image",
        max(0.0, pull.minutes - lead),
        pull.after,
        f"what is left of the pre-pull, begun when the IDC nodes joined, {lead:.1f} min before this run "
        f"({'assumed: one modelled pull or more' if nodes_joined_minutes_before is None else 'given'}); "
        f"the whole pull: {pull.minutes:.1f} min, {pull.why}",
    )
    tasks = [
        *(remaining if t is pull else t for t in serving),
        _step(PRIVATE_LB, d.LB_ALIBABA_MIN.value, (SERVING_START,), d.LB_ALIBABA_MIN),
    ]
    return Timeline(ACK_EDGE, (*tasks, Task(API, 0.0, (PRIVATE_LB, SERVING_READY))))


def ack_edge_first_run(settings: ClusterSettings) -> Timeline:
    """`ackEdge.clusterOnly`: network and NAT, the Edge cluster and its system pool, the import workers beside
    them (the bucket needs no cluster); done when both are."""
    tasks = [
        _step("network", d.NETWORK_MIN.value + d.NAT_MIN.value, (), d.NETWORK_MIN),
        _step("Edge cluster", d.ACK_CLUSTER_MIN.value, ("network",), d.ACK_CLUSTER_MIN),
        _step("system pool", d.CPU_POOL_MIN.value, ("Edge cluster",), d.CPU_POOL_MIN),
        *_workers(settings, ("network",)),
    ]
    return Timeline(ACK_EDGE, (*tasks, Task(API, 0.0, ("system pool", IMPORT_DONE), "the first run ends")))


def gke(settings: GkeTargetSettings) -> Timeline:
    """APIs and VPC; then the cluster and the GPU pool, and beside them the import (a Cloud Run job that needs only
    the bucket: components/gcp/hf_gcs_import.py); each GPU node pulls the engine image once it is up (a pre-pull
    DaemonSet, not waiting for the import); serving is created after the import and loads on a node with the image."""
    nodes = settings.placement.pods * settings.workload.replicas
    pull = d.gke_image_pulls(nodes)
    tasks = [
        _step("APIs and network", d.GCP_APIS_MIN.value, (), d.GCP_APIS_MIN),
        _step("GKE cluster", d.GKE_CLUSTER_MIN.value, ("APIs and network",), d.GKE_CLUSTER_MIN),
        _step("GPU pool", d.GKE_A4_POOL_MIN.value, ("GKE cluster",), d.GKE_A4_POOL_MIN),
        # Pulled by the pre-pull DaemonSet as soon as each GPU node is up, whether the import has finished or not.
        Task("engine image", pull.minutes, ("GPU pool",), f"{pull.name}: {pull.source}"),
        _step(PRIVATE_LB, d.LB_GCP_MIN.value, (SERVING_START,), d.LB_GCP_MIN),
    ]
    load = _engine_load(settings, ("engine image", SERVING_START))
    if settings.gke.model_source == "download":
        # No bucket import: the engine downloads the weights from Hugging Face when it starts (stacks/gcp/gke.py).
        download = d.download_at_start(settings.model)
        tasks += [
            Task(SERVING_START, 0.0, ("GKE cluster",), "the serving workload is created"),
            Task(
                load.name,
                download.minutes + load.minutes,
                load.after,
                f"{download.name}: {download.source}; {load.why}",
            ),
        ]
    else:
        plan = d.gke_import(settings.model, d.gke_import_tasks(settings.model, settings.gke.import_tasks))
        tasks += [
            Task(IMPORT_START, 0.0, ("APIs and network",), "the bucket and the Cloud Run import job are created"),
            *_plan_tasks("import", plan, (IMPORT_START,)),
            Task(IMPORT_DONE, 0.0, (f"import: {plan.steps[-1].name}",), "the job's execution succeeds"),
            Task(SERVING_START, 0.0, (IMPORT_DONE, "GKE cluster"), "the serving workload is created"),
            load,
        ]
    return Timeline(GKE, (*tasks, Task(API, 0.0, (PRIVATE_LB, SERVING_READY))))


def kubernetes(settings: ClusterSettings) -> Timeline:
    """An existing cluster with GPU nodes: the import Job, then serving (its egress assumed: CLUSTER_EGRESS_MBPS)."""
    mbps = d.CLUSTER_EGRESS_MBPS.value
    tasks = [*_import(settings, mbps, ()), *_serving(settings, mbps, 0.0, (IMPORT_DONE,))]
    return Timeline(KUBERNETES, (*tasks, Task(API, 0.0, ("engine load",))))


BUILDERS = {ECS: ecs, ACS: acs, ACK: ack, ACK_EDGE: ack_edge, GKE: gke, KUBERNETES: kubernetes}


def serves_nothing_yet(settings: Settings) -> bool:
    """ack-edge's first run (ackEdge.clusterOnly): the cluster and the import, no serving workload."""
    return isinstance(settings, AckEdgeSettings) and settings.edge.cluster_only


def timeline(settings: Settings) -> Timeline:
    """The stack's `pulumi up`; on ack-edge's first run, that run's own (serves_nothing_yet)."""
    if serves_nothing_yet(settings):
        return ack_edge_first_run(settings)  # type: ignore[arg-type]  # AckEdgeSettings is a ClusterSettings
    return BUILDERS[settings.target](settings)  # type: ignore[arg-type]  # each builder takes its target's settings


# What each example stack should reach (minutes to a serving API, modelled), from a time-to-ready review of
# improved designs (its table is not part of this repository). ecs: first host in a region; ack-edge: its second
# run.
GOALS = {"dev": 10, "prod": 16, "acs": 18, "acs-r1": 45, "ack": 25, "ack-edge": 10, "gke": 36}
# The ecs goals of later hosts in a region (issue 14): a stack's config plus these `--path` keys, and its goal.
PREPARED = "m-bp1preparedimage1"  # any prepared image id: the model reads only that there is one
# The weights in the region stream from OSS into the engine (ecs.weights.load stream, asked for, with an image that
# ships the streamer: vLLM's own image, not the mainland default EGS image of the dev and prod stacks); the
# "copied" rows keep the default copy onto the disk, for comparison.
# A bucket another stack filled (source oss): no import of this stack's own (prod's importWorkers unset).
FILLED = {"ecs.weights.source": "oss", "ecs.weights.bucket": "my-llm-models", "ecs.weights.importWorkers": None}
IN_REGION = {**FILLED, "ecs.weights.load": "stream", "engine.image": VLLM_IMAGE.value}
COPIED = FILLED
NO_IMPORT = {"ecs.weights.source": None, "ecs.weights.importWorkers": None}  # ModelScope onto the host (the default)
# The mainland default engine image, copied into an ACR Enterprise Edition instance of yours in the region (by hand or
# another stack's engine.mirror): the host pulls it over the VPC. The domain is an example of the form; the model
# reads only that the host is an Enterprise instance's VPC domain in the stack's region.
YOUR_ACR = "myacr-registry-vpc.cn-hangzhou.cr.aliyuncs.com/llm/"
IN_ACR = {"engine.image": YOUR_ACR + VLLM_IMAGE_CN.value.rsplit("/", 1)[1]}
MIRRORED = {
    "engine.mirror.instanceId": "cri-example",
    "engine.mirror.registry": "example-registry-vpc.cn-hangzhou.cr.aliyuncs.com",
    "engine.mirror.namespace": "llm",
}
STREAM_FROM_OSS = {"modelStore.load": "stream", "engine.image": VLLM_IMAGE.value}
# vLLM's own image (it ships the streamer) copied into an ACR Enterprise Edition instance of yours in the region.
VLLM_IN_ACR = {"engine.image": YOUR_ACR + VLLM_IMAGE.value.rsplit("/", 1)[1]}
# The NAT with one EIP (the default; dev, acs, acs-r1 and ack set five, core/nat_egress.py), for comparison.
ONE_EIP = {"network.natBandwidthMbps": 200}
VARIANTS = {
    "dev, one NAT EIP (200 Mbit/s)": ("dev", ONE_EIP, None),
    "dev, engine image from your ACR in the region": ("dev", IN_ACR, 10),
    "prod, engine image from your ACR in the region": ("prod", IN_ACR, 16),
    "dev, prepared image": ("dev", {"ecs.preparedImage.id": PREPARED}, 5),
    "dev, prepared image, weights in the region": ("dev", {"ecs.preparedImage.id": PREPARED, **IN_REGION}, 5),
    "prod, prepared image, weights in the region": ("prod", {"ecs.preparedImage.id": PREPARED, **IN_REGION}, 10),
    "dev, prepared image, weights copied from the region": ("dev", {"ecs.preparedImage.id": PREPARED, **COPIED}, None),
    "prod, prepared image, weights copied from the region": (
        "prod",
        {"ecs.preparedImage.id": PREPARED, **COPIED},
        None,
    ),
    "prod, prepared image": ("prod", {"ecs.preparedImage.id": PREPARED}, None),
    "dev, weights copied from the region": ("dev", COPIED, None),
    "prod, weights copied from the region": ("prod", COPIED, None),
    # prod's own import at t=0 (ecs.weights.source import) against what it replaces.
    "prod, weights from ModelScope on the host (no import)": ("prod", NO_IMPORT, None),
    "prod, the import's default split (3 workers)": ("prod", {"ecs.weights.importWorkers": None}, None),
    "prod, the import with one NAT EIP (200 Mbit/s)": ("prod", ONE_EIP, None),
    "prod, the import onto a 190 GiB disk (215 MB/s)": ("prod", {"disk.sizeGib": 190}, None),
    "dev, imported at t=0 (1 worker)": ("dev", {"ecs.weights.source": "import"}, None),
    "dev, engine image from your ACR, weights copied from the region": ("dev", {**IN_ACR, **COPIED}, None),
    "prod, engine image from your ACR, weights copied from the region": ("prod", {**IN_ACR, **COPIED}, None),
    # Streaming from OSS (docs/loading.md): explicit, with an engine image that ships the streamer (not EGS's), and
    # past Fluid on acs-r1 (the stream reads OSS directly).
    "acs-r1, streamed from OSS": ("acs-r1", {**STREAM_FROM_OSS, "acs.fluid": False}, 45),
    "ack, streamed from OSS": ("ack", STREAM_FROM_OSS, 25),
    "acs, vLLM's image from your ACR in the region, streamed from OSS": (
        "acs",
        {**STREAM_FROM_OSS, **VLLM_IN_ACR},
        18,
    ),
    # The engine image copied into an ACR Enterprise Edition instance of yours at t=0 (engine.mirror): the GPU
    # pods pull it over the VPC. The instance id, domain and namespace are examples of their forms: the model reads
    # only that there is a mirror in the stack's region.
    "acs, engine image mirrored into ACR EE": ("acs", MIRRORED, 18),
    "ack, engine image mirrored into ACR EE": ("ack", MIRRORED, 25),
}
