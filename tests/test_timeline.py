"""The time to a serving API (core/timeline.py, core/ready_time.py): the model, its output, and every deadline the
program sets against the step it waits for, on every example stack."""

from __future__ import annotations

import functools
import re

import pytest
from harness import EXAMPLE_STACKS, run_stack, settings_for, unwrap

from components.kubernetes.serving_workload import STARTUP_FLOOR_MINUTES
from core.ready_time import IMPORT_DONE, IMPORT_START, SERVING_READY, SERVING_START, ack_edge_first_run, timeline
from core.timeline import API, Task, Timeline, chain

K8S_STACKS = [s for s in EXAMPLE_STACKS if s not in ("dev", "prod")]


@functools.cache
def stack(name):
    return run_stack(name)


def minutes(text: str) -> float:
    """A Pulumi custom timeout ('95m', '2h', '90s') in minutes."""
    value, unit = re.fullmatch(r"(\d+)([smh])", text).groups()
    return int(value) * {"s": 1 / 60, "m": 1, "h": 60}[unit]


# --- The model itself -----------------------------------------------------------------------------------------


def test_the_critical_path_is_the_longest_chain_and_overlapped_steps_are_off_it():
    graph = Timeline(
        "t",
        (
            Task("cluster", 10),
            Task("import", 30),  # starts at t=0, beside the cluster
            Task("pool", 8, ("cluster",)),
            Task("load", 5, ("pool", "import")),
            Task(API, 0, ("load",)),
        ),
    )
    assert graph.total == 35 and [t.name for t in graph.critical_path()] == ["import", "load", API]
    assert graph.start("load") == 30 and graph.span("pool", "load") == 25
    serial = chain("t", [("cluster", 10, ""), ("pool", 8, ""), ("import", 30, ""), ("load", 5, "")])
    assert serial.total == 53


@pytest.mark.parametrize(
    "tasks",
    [
        (Task("a", 1, ("b",)), Task("b", 1, ("a",)), Task(API, 0, ("a",))),  # a cycle
        (Task("a", 1, ("missing",)), Task(API, 0, ("a",))),
        (Task("a", 1), Task("a", 2), Task(API, 0, ("a",))),
        (Task("a", 1),),  # no goal
    ],
)
def test_a_malformed_graph_is_refused(tasks):
    with pytest.raises(ValueError):
        Timeline("t", tasks)


@pytest.mark.parametrize("name", EXAMPLE_STACKS)
def test_every_stack_outputs_its_expected_time_and_critical_path(name):
    expected = timeline(settings_for(name))
    output = stack(name).outputs["expectedReadyMinutes"]
    assert output["total"] == round(expected.total, 1) > 0
    path = output["criticalPath"]
    assert path[-1]["step"] == API and path[-1]["startsAt"] == output["total"]
    assert sum(step["minutes"] for step in path) == pytest.approx(output["total"], abs=0.1 * len(path))


def test_preview_prints_the_estimate_before_anything_is_created():
    messages = [m for m, _ in run_stack("acs", preview=True).logs]
    assert any(m.startswith("acs: acs: about") and "critical path" in m for m in messages), messages


# --- Deadlines against what they wait for ---------------------------------------------------------------------


# prod imports into its own bucket (ecs.weights.source import); these starts take the weights from ModelScope or a
# bucket another stack filled, so its importWorkers key is unset.
NO_IMPORT = {"ecs.weights.source": None, "ecs.weights.importWorkers": None}
FILLED = {"ecs.weights.source": "oss", "ecs.weights.bucket": "my-llm-models", "ecs.weights.importWorkers": None}
ECS_STARTS = {
    "first host": NO_IMPORT,
    "prepared image": {**NO_IMPORT, "ecs.preparedImage.id": "m-bp1preparedmock01"},
    "prepared image, weights in the region": {"ecs.preparedImage.id": "m-bp1preparedmock01", **FILLED},
    "the stack's own import": {"ecs.weights.source": "import"},
    "engine image from a VPC registry": {
        "engine.image": "llm-registry-vpc.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0"
    },
    "prepared image, weights streamed from the region": {
        "ecs.preparedImage.id": "m-bp1preparedmock01",
        **FILLED,
        "ecs.weights.load": "stream",
        "engine.image": "docker.io/vllm/vllm-openai:v0.32.0",
    },
}


@pytest.mark.parametrize("start", sorted(ECS_STARTS))
@pytest.mark.parametrize("name", ["dev", "prod"])
def test_the_ecs_readiness_wait_covers_the_hosts_start(name, start):
    settings = settings_for(name, ECS_STARTS[start])
    expected = timeline(settings)
    first_start = expected.span(expected.tasks[0].name)
    assert settings.ecs.readiness_timeout_minutes >= first_start, name
    run = run_stack(name, ECS_STARTS[start], images=["m-ubuntu2204-mock", "m-bp1preparedmock01"])
    assert run.outputs["readinessTimeoutMinutes"] >= first_start
    assert run.outputs["expectedReadyMinutes"]["total"] == round(expected.total, 1)


def test_a_prepared_image_and_the_weights_in_the_region_shorten_the_start_and_each_counts():
    totals = {
        start: timeline(settings_for("prod", {**NO_IMPORT, **overrides})).total
        for start, overrides in ECS_STARTS.items()
        if start != "the stack's own import"
    }
    assert totals["prepared image, weights in the region"] < totals["prepared image"] < totals["first host"]
    assert totals["engine image from a VPC registry"] <= totals["first host"]
    path = [t.name for t in timeline(settings_for("prod", ECS_STARTS["prepared image"])).critical_path()]
    assert "host: apt: nothing to install" in path and not any("Docker, toolkit" in step for step in path)


def test_streamed_weights_have_no_copy_and_load_at_the_oss_streaming_rate_bounded_by_the_nic():
    from core import durations

    streamed = settings_for("prod", ECS_STARTS["prepared image, weights streamed from the region"])
    copied = settings_for("prod", ECS_STARTS["prepared image, weights in the region"])
    assert timeline(streamed).total < timeline(copied).total
    plan = durations.ecs_readiness(streamed.model, streamed.ecs.egress_mbps, streamed.ecs.start)
    names = [s.name for s in plan.steps]
    assert "weights: streamed from OSS by the engine (no copy)" in names
    assert not any(n.startswith("weights from OSS in the region") for n in names)
    (load,) = [s for s in plan.steps if s.name.startswith("engine start")]
    # QwQ-32B's weights by 4 ranks at 3.51 GiB/s each, capped by the 2000 MB/s NIC: the NIC binds.
    rate = min(4 * durations.STREAM_OSS_GB_PER_S_PER_RANK.value, durations.NIC_MB_PER_S.value / 1000)
    assert rate == 2.0
    stream_min = durations.weights_gb(streamed.model) / rate / 60
    warm = durations.warmup(streamed.model, 4).minutes
    assert load.name == "engine start, stream x4 and warm-up"
    assert load.minutes == pytest.approx(durations.ENGINE_START_MIN.value + stream_min + warm)
    # The wait is derived from that plan as before: x1.5, at least 30 minutes.
    assert streamed.ecs.readiness_timeout_minutes == plan.deadline(1.5, 30)


def test_the_ecs_import_starts_with_the_network_and_the_hosts_copy_waits_for_it():
    """ecs.weights.source import: the workers start once the network and its NAT exist, beside the host; the host's
    weights step ends no earlier than the import plus the copy, and the API then follows the load."""
    from core import durations

    prod = settings_for("prod")
    expected = timeline(prod)
    assert expected.start(IMPORT_START) == expected.finish("network")
    done = expected.finish(IMPORT_DONE)
    assert done == pytest.approx(prod.ecs.start.import_minutes)
    (weights,) = [t for t in expected.tasks if t.name.startswith("host: the import (8 workers")]
    copy = durations.weights_gb(prod.model) * 1000 / durations.essd_mb_per_s(prod.disk.size_gib) / 60
    assert expected.finish(weights.name) == pytest.approx(done + copy)
    assert weights.name in [t.name for t in expected.critical_path()]
    # Without the import the same host waits for nothing and downloads from ModelScope itself, later.
    assert timeline(settings_for("prod", NO_IMPORT)).total > expected.total


def test_building_a_prepared_image_is_off_the_apis_path_and_pulumi_up_waits_long_enough_for_it():
    built = {"ecs.preparedImage.build": True}
    expected = timeline(settings_for("dev", built))
    assert expected.total == timeline(settings_for("dev")).total  # the first host does not wait for it
    build = expected.finish("prepared image: image snapshot")
    run = run_stack("dev", built)
    image = next(r for r in run.of_type("pulumi-python:dynamic:Resource") if "execution_id" in r.inputs)
    assert image.inputs["wait_minutes"] >= build and minutes(image.custom_timeouts["create"]) >= build


def _import_job(run):
    jobs = [o for o in run.kubernetes_objects() if o["kind"] == "Job" and "import" in o["metadata"]["name"]]
    assert len(jobs) == 1, [o["metadata"]["name"] for o in run.kubernetes_objects() if o["kind"] == "Job"]
    resource = next(r for r in run.of_type("kubernetes:batch/v1:Job") if "import" in r.name)
    return jobs[0], resource


ALIBABA_CLUSTER_STACKS = ("acs", "acs-r1", "ack", "ack-edge")


def _import_invocations(run):
    """(Cloud Assistant command, its invocation) of every model import worker."""
    commands = {f"{c.name}-id": c for c in run.of_type("alicloud:ecs/command:Command")}
    return [
        (commands[unwrap(i.inputs)["commandId"]], i)
        for i in run.of_type("alicloud:ecs/ecsInvocation:EcsInvocation")
        if "-import-" in i.name
    ]


@pytest.mark.parametrize("name", [s for s in K8S_STACKS if s not in ALIBABA_CLUSTER_STACKS])
def test_the_import_deadlines_cover_the_modelled_import(name):
    expected = timeline(settings_for(name))
    if IMPORT_START not in expected.by_name:
        pytest.skip("no import on this stack")
    run, modelled = stack(name), expected.span(IMPORT_START, IMPORT_DONE)
    if settings_for(name).target == "gke":
        # A Cloud Run job: each task's attempt may take the whole import, and `pulumi up` waits for the execution.
        job = run.one("gcp:cloudrunv2/job:Job")
        task = unwrap(job.inputs)["template"]["template"]
        assert minutes(task["timeout"]) >= modelled
        assert minutes(job.custom_timeouts["create"]) >= modelled and job.custom_timeouts["update"]
        return
    job, resource = _import_job(run)
    assert job["spec"]["activeDeadlineSeconds"] / 60 >= modelled
    assert minutes(resource.custom_timeouts["create"]) >= modelled


@pytest.mark.parametrize(
    "overrides",
    [{}, {"model": "QwQ-32B"}, {"model": "DeepSeek-R1", "placement.gpuKind": "H20", "placement.gpuCount": 8}],
    ids=["7B", "QwQ-32B", "DeepSeek-R1"],
)
def test_the_kubernetes_import_jobs_deadline_covers_the_modelled_import_of_any_model(overrides):
    """The Job's deadline comes from the same model as the estimate, so a bigger model gets a longer one."""
    expected = timeline(settings_for("kubernetes", overrides))
    modelled = expected.span(IMPORT_START, IMPORT_DONE)
    job, resource = _import_job(run_stack("kubernetes", overrides))
    assert job["spec"]["activeDeadlineSeconds"] / 60 >= 2 * modelled >= 2 * 21  # the model at 100 Mbit/s, doubled
    assert minutes(resource.custom_timeouts["create"]) >= modelled


@pytest.mark.parametrize("name", (*ALIBABA_CLUSTER_STACKS, "prod"))  # prod: ecs.weights.source import
def test_the_import_workers_deadlines_cover_the_modelled_import(name):
    """Each worker's command timeout, and Pulumi's wait for its invocation, cover the import as modelled (for
    ack-edge: in its first run, where the import runs)."""
    settings = settings_for(name)
    expected = ack_edge_first_run(settings) if name == "ack-edge" else timeline(settings)
    modelled = expected.span(IMPORT_START, IMPORT_DONE)
    assert modelled > 0
    pairs = _import_invocations(stack(name))
    assert pairs
    for command, invocation in pairs:
        timeout = unwrap(command.inputs)["timeout"] / 60
        assert timeout >= modelled and minutes(invocation.custom_timeouts["create"]) >= timeout


def test_the_import_starts_with_the_network_beside_the_cluster_on_acs_and_ack():
    for name in ("acs", "ack"):
        expected = timeline(settings_for(name))
        assert expected.start(IMPORT_START) == expected.finish("network")
        assert IMPORT_DONE in expected.by_name[SERVING_START].after
    ack = timeline(settings_for("ack"))
    assert IMPORT_DONE not in [t.name for t in ack.critical_path()]  # the 7B import ends before the GPU pool
    edge = timeline(settings_for("ack-edge"))
    assert IMPORT_START not in edge.by_name  # the second run: the first one imported


def test_the_gke_import_runs_beside_the_cluster_and_pool_off_the_critical_path():
    """The import needs only the bucket: it starts with the cluster, and for R1 on A4 it ends before the GPU pool,
    so the serving pods start when their nodes are ready, not when the download ends."""
    expected = timeline(settings_for("gke"))
    assert expected.start(IMPORT_START) == expected.finish("APIs and network")
    assert expected.finish(IMPORT_DONE) < expected.finish("GPU pool")
    path = [t.name for t in expected.critical_path()]
    assert IMPORT_DONE not in path and "GPU pool" in path
    assert expected.start("engine image") == expected.finish("GPU pool")


def _pod_template(workload) -> dict:
    """The serving pods' template: a Deployment's, or a LeaderWorkerSet's leader."""
    spec = unwrap(workload.inputs)["spec"]
    return spec.get("template") or spec["leaderWorkerTemplate"]["leaderTemplate"]


def _serving(run):
    for resource in run.resources:
        if resource.type in ("kubernetes:apps/v1:Deployment", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"):
            if unwrap(resource.inputs)["metadata"]["name"] == "llm":
                return resource
    raise LookupError("no serving workload")


@pytest.mark.parametrize("name", K8S_STACKS)
def test_the_serving_waits_cover_the_modelled_start_and_load(name):
    _serving_waits_cover(timeline(settings_for(name)), stack(name))


GKE_DOWNLOAD = {"gke.modelSource": "download"}


def test_a_gke_download_at_start_is_modelled_as_the_engine_does_it_and_the_waits_cover_it():
    """gke.modelSource download: no bucket import; the engine downloads the weights from Hugging Face as it starts,
    so the serving pods start with the cluster and their load includes the download."""
    from core import durations

    settings = settings_for("gke", GKE_DOWNLOAD)
    expected = timeline(settings)
    assert IMPORT_START not in expected.by_name and IMPORT_DONE not in expected.by_name
    assert expected.by_name[SERVING_START].after == ("GKE cluster",)
    download = durations.download_at_start(settings.model).minutes
    assert download > 30  # R1's 689 GB from the hub
    load = durations.engine_load(settings.model, 0, settings.placement.tensor_parallel).minutes  # from the disk
    assert expected.by_name[SERVING_READY].minutes == pytest.approx(download + load)
    assert "Hugging Face" in expected.by_name[SERVING_READY].why
    _serving_waits_cover(expected, run_stack("gke", GKE_DOWNLOAD))


def _serving_waits_cover(expected, run):
    workload = _serving(run)
    modelled = expected.span(SERVING_START, SERVING_READY)
    assert minutes(workload.custom_timeouts["create"]) >= modelled
    spec = unwrap(workload.inputs)["spec"]
    engine = next(c for c in _pod_template(workload)["spec"]["containers"] if c["name"] == "engine")
    startup = engine["startupProbe"]
    load = expected.by_name[SERVING_READY].minutes
    # At least the load as modelled, and never under the floor a cold first start on a real GPU may need.
    assert startup["periodSeconds"] * startup["failureThreshold"] / 60 >= max(load, STARTUP_FLOOR_MINUTES)
    if "progressDeadlineSeconds" in spec:
        assert spec["progressDeadlineSeconds"] / 60 >= modelled


def test_ack_edge_second_run_waits_only_for_what_is_left_of_the_first_runs_image_prepull():
    """The first run's pre-pull DaemonSet pulls the engine image onto each IDC node as it joins; the second run's
    image step is what is left of that pull. Assumed by default: the nodes joined one modelled pull or more before
    the second run. The serving deadlines still allow the whole pull (a pod that starts first pulls it itself)."""
    from core.ready_time import GOALS, ack_edge

    settings = settings_for("ack-edge")
    whole = ack_edge(settings, nodes_joined_minutes_before=0)
    pull = whole.by_name["engine image"].minutes
    assert pull > 9  # 12 GB at 200 Mbit/s, then unpacked
    assumed = timeline(settings)
    assert assumed.by_name["engine image"].minutes == 0 and "assumed" in assumed.by_name["engine image"].why
    assert ack_edge(settings, pull / 2).by_name["engine image"].minutes == pytest.approx(pull / 2)
    assert ack_edge(settings, 3 * pull).by_name["engine image"].minutes == 0
    assert assumed.total <= GOALS["ack-edge"] < whole.total
    workload = _serving(stack("ack-edge"))
    waited = whole.span(SERVING_START, SERVING_READY)
    assert minutes(workload.custom_timeouts["create"]) >= waited
    assert unwrap(workload.inputs)["spec"]["progressDeadlineSeconds"] / 60 >= waited


@pytest.mark.parametrize("name", ["dev", "acs", "acs-r1", "ack"])
def test_a_nat_pool_that_spreads_nothing_still_fits_the_deadlines(name):
    """These stacks set five EIPs and are modelled at what a transfer's connections get from them. If the pool
    spread nothing (one EIP's 200 Mbit/s for everything: core/nat_egress.py's unchecked part), `up` would still
    not time out."""
    settings = settings_for(name)
    assert settings.network.nat_bandwidth_mbps == 1000
    one_eip = timeline(settings_for(name, {"network.natBandwidthMbps": 200}))
    assert one_eip.total > timeline(settings).total  # the pool is counted
    run = stack(name)
    if name == "dev":
        assert run.outputs["readinessTimeoutMinutes"] >= one_eip.span(one_eip.tasks[0].name)
        return
    workload = _serving(run)
    assert minutes(workload.custom_timeouts["create"]) >= one_eip.span(SERVING_START, SERVING_READY)


def _jindo_workers(run) -> int:
    runtime = next(r for r in run.resources if r.type == "kubernetes:data.fluid.io/v1alpha1:JindoRuntime")
    return int(unwrap(runtime.inputs)["spec"]["replicas"])


def test_a_fluid_cache_is_filled_after_the_import_and_the_load_reads_it_warm():
    """acs.fluid (acs-r1): the chart once the cluster exists, the serving pods once its objects exist, the DataLoad
    once the import is done, over as many workers as the stack makes; the load then reads the cache at twice the
    mount figure, and starts no earlier than the cache is filled."""
    from core import durations as d
    from core.ready_time import CACHE_FILLED, FLUID_READY

    settings = settings_for("acs-r1")
    expected = timeline(settings)
    assert expected.start(FLUID_READY) == expected.finish("ACS cluster")
    assert FLUID_READY in expected.by_name[SERVING_START].after
    fill = next(t for t in expected.tasks if t.name.startswith("cache: DataLoad"))
    assert expected.start("cache: cache workers") == max(expected.finish(FLUID_READY), expected.finish(IMPORT_DONE))
    workers = _jindo_workers(stack("acs-r1"))
    assert f"into {workers} workers'" in fill.name
    gb = d.weights_gb(settings.model)
    assert fill.minutes == pytest.approx(gb * 1000 / (d.FLUID_FILL_MB_PER_S_PER_WORKER.value * workers) / 60)
    assert set(expected.by_name[SERVING_READY].after) == {"engine image", CACHE_FILLED}
    cold = d.engine_load(settings.model, 0, settings.placement.tensor_parallel).minutes
    warm = expected.by_name[SERVING_READY].minutes
    read = settings.model.weights_gib / d.LOAD_MOUNT_GIB_PER_MIN.value
    assert cold - warm == pytest.approx(read / 2)
    assert expected.finish(CACHE_FILLED) < expected.finish("engine image")  # filled while the pods pull


def test_a_cache_filled_later_than_the_pods_are_ready_delays_the_load(monkeypatch):
    from core import durations as d
    from core.ready_time import CACHE_FILLED

    monkeypatch.setattr(d, "FLUID_FILL_MB_PER_S_PER_WORKER", d.Figure(10.0, "MB/s per worker", "A", "slow"))
    expected = timeline(settings_for("acs-r1"))
    assert expected.finish(CACHE_FILLED) > expected.finish("engine image")
    assert expected.start(SERVING_READY) == expected.finish(CACHE_FILLED)


@pytest.mark.parametrize("name, overrides", [("acs", {}), ("acs-r1", {"acs.fluid": False})])
def test_without_fluid_there_is_no_cache_step_and_the_load_reads_the_mount(name, overrides):
    from core import durations as d
    from core.ready_time import FLUID_READY

    settings = settings_for(name, overrides)
    expected = timeline(settings)
    assert FLUID_READY not in expected.by_name
    assert expected.by_name[SERVING_READY].after == ("engine image",)
    assert expected.by_name[SERVING_READY].minutes == pytest.approx(
        d.engine_load(settings.model, 0, settings.placement.tensor_parallel).minutes
    )


# --- The serving workload starts loading as soon as what it needs is there ----------------------------------------

# What a serving pod's load needs before it can start, by the names the timelines give them: the import's end, the
# GPU nodes (an ACK or GKE pool, ACS capacity), the engine image on them (the pod's own pull, or the pre-pull
# DaemonSet's on ack and gke), the image mirror's copy and Fluid's cache, where a stack has them.
LOAD_NEEDS = (IMPORT_DONE, "GPU pool", "GPU capacity", "engine image", "mirror done", "cache filled")
IMPORT_DONE_TYPES = {  # what, in each stack, is done only when the import is
    "alicloud:ecs/ecsInvocation:EcsInvocation",  # a worker's Cloud Assistant invocation succeeded
    "gcp:cloudrunv2/job:Job",  # with run_execution_token: ready once the execution succeeded
    "kubernetes:batch/v1:Job",  # the provider awaits the Job's completion
}
IMPORTING_STACKS = [s for s in K8S_STACKS if s != "ack-edge"]  # ack-edge's second run finds the import done


@pytest.mark.parametrize("name", IMPORTING_STACKS)
def test_the_load_starts_within_a_minute_of_the_import_and_the_gpu_nodes_being_ready(name):
    """The issue's "done when": the serving workload starts loading within a minute of the import finishing and
    its nodes being ready. In the model nothing stands between the last of those and the load; in the stack the
    serving workload waits for the import's own completion (every worker's invocation, the Cloud Run execution,
    the Job) and for nothing slower, and its pods have no init container that could wait before the engine starts.
    What is left are the provider's polls of the invocation or execution (seconds)."""
    from core import durations

    settings = settings_for(name)
    expected = timeline(settings)
    needs = [n for n in LOAD_NEEDS if n in expected.by_name]
    assert IMPORT_DONE in needs and ("GPU pool" in needs or "GPU capacity" in needs) and "engine image" in needs
    assert expected.start(SERVING_READY) - max(expected.finish(n) for n in needs) <= 1.0

    run = stack(name)
    workload = _serving(run)
    by_urn = {r.urn: r for r in run.resources}
    direct = [by_urn[u] for u in workload.dependencies if u in by_urn]
    completions = [r for r in direct if r.type in IMPORT_DONE_TYPES]
    assert completions, f"{name}: the serving workload does not wait for the import's completion"
    workers = [
        r for r in run.resources if r.type == "alicloud:ecs/ecsInvocation:EcsInvocation" and "-import-" in r.name
    ]
    if workers:
        assert {r.urn for r in workers} <= set(workload.dependencies), "a worker's invocation is not waited for"
        assert len(workers) == durations.import_workers(settings.model, settings.model_store.import_workers)
    if any(r.type == "gcp:cloudrunv2/job:Job" for r in completions):
        job = next(r for r in completions if r.type == "gcp:cloudrunv2/job:Job")
        assert unwrap(job.inputs)["runExecutionToken"]  # without it the job exists but nothing ran
    assert not _pod_template(workload)["spec"].get("initContainers")
