"""`placement` and `workload`: where one copy of the model runs (GPU kind and count, instance type, pods per
copy, zone) and what each Kubernetes serving pod gets (namespace, CPU, memory, /dev/shm).

The sizing check picks the fewest GPUs (then pods) that hold the model; a model that fits nowhere is
refused with the shapes that would fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional

from core import gateway, sizing
from core.catalog import (
    CAPACITY_MODES,
    ECS_INSTANCE_TYPES,
    FLEX_START,
    GKE_MACHINES,
    GPUS,
    ON_DEMAND,
    RESERVATION,
    SPOT,
    GkeMachine,
    Gpu,
    InstanceType,
    ModelSpec,
    gke_machines_with,
    instance_types_with,
)
from core.config.problems import Problems
from core.config.schema import DnsLabel, EcsInstanceType, Group, Int, matches, option, within
from core.engine import VLLM, EngineOptions
from core.targets import ACK, ACK_EDGE, ACS, ECS, GKE, KUBERNETES, ON_KUBERNETES

# The GPU kind each target assumes when placement.gpuKind is unset: what its example serves on, and on acs
# the only series confirmed (H20). gke has none: it takes the smallest GKE machine of any kind that fits.
DEFAULT_GPU = {ECS: "A10", ACK: "A10", ACK_EDGE: "V100", ACS: "H20", KUBERNETES: "A10"}
# What a GKE GPU node runs besides the serving pod: GKE's DaemonSets (logging, metrics, the NVIDIA device plugin,
# the DCGM exporter) and the serving pod's GCS FUSE sidecar. Assumed headroom: their requests were not looked up.
GKE_NODE_HEADROOM_CPU = 1.5
GKE_NODE_HEADROOM_MEMORY_GIB = 3.0
POD_GPU_COUNTS = (1, 2, 4, 8)
MAX_PODS_PER_REPLICA = 4  # pipeline stages across pods: beyond 4 the Ray group's startup dominates
ZONE = r"[a-z]{2}-[a-z0-9]+(-[a-z0-9]+)*"  # Alibaba Cloud zone ids: cn-hangzhou-i, ap-southeast-1a


class PlacementConfig(Group):
    """Where one copy of the model runs."""

    gpu_kind: Optional[Annotated[str, matches(r"[A-Za-z0-9]{2,16}", "a GPU kind like A10, H20 or B200")]] = option(
        None,
        "GPU kind; empty: the target's (ecs/ack A10, ack-edge V100, acs H20, kubernetes A10; gke: any).",
        example="A10",
    )
    # No machine or pod here has more than 8 GPUs (ebmgn8v, a4-highgpu-8g, gn7i-8x).
    gpu_count: Annotated[Int, within(0, 8, "GPUs")] = option(
        0, "GPUs per instance (ecs) or per pod (Kubernetes targets); 0: the fewest that fit."
    )
    instance_type: Optional[EcsInstanceType] = option(
        None,
        "ECS GPU instance type (ecs: the host, ack: the GPU nodes); empty: chosen from gpuKind and gpuCount.",
        targets=(ECS, ACK),
        example="ecs.gn7i-c16g1.4xlarge",
    )
    pods_per_replica: Annotated[Int, within(0, MAX_PODS_PER_REPLICA, "pods")] = option(
        0,
        "Pods per model copy (pipeline stages, a LeaderWorkerSet when > 1); 0: the fewest that fit.",
        targets=ON_KUBERNETES,
    )
    zone: Optional[Annotated[str, matches(ZONE, "an Alibaba Cloud zone id like cn-hangzhou-i")]] = option(
        None,
        "Zone of the GPU host; empty: the first zone that sells the instance type now.",
        targets=(ECS,),
        example="cn-hangzhou-i",
    )


class WorkloadConfig(Group):
    """What each Kubernetes serving pod gets; 0 means sized from the GPUs."""

    TARGETS = ON_KUBERNETES
    namespace: DnsLabel = option("llm", "Namespace of the serving workload.")
    # Largest machines here: a4-highgpu-8g (224 vCPU, 3968 GiB), ebmgn8v (192 vCPU, 1024 GiB).
    cpu_per_pod: Annotated[Int, within(0, 224, "vCPUs")] = option(
        0, "vCPUs per serving pod; 0: 16 per GPU up to 64 (acs), 4 per GPU up to 32 (elsewhere)."
    )
    memory_gib_per_pod: Annotated[Int, within(0, 3968, "GiB")] = option(
        0, "Memory per serving pod; 0: 128 GiB per GPU up to 512 (acs), 24 per GPU up to 192 (elsewhere)."
    )
    shm_gib: Annotated[Int, within(0, 2048, "GiB")] = option(
        0, "/dev/shm per serving pod (memory-backed); 0: 8 GiB per GPU, at most a quarter of the memory."
    )


@dataclass(frozen=True)
class Placement:
    """Where one copy of the model runs: GPUs per pod (or instance), pods per copy, and the checked budget."""

    gpu: Gpu
    gpus_per_pod: int
    fit: sizing.Fit
    pods: int = 1  # pipeline-parallel stages, one pod each
    instance: Optional[InstanceType] = None  # ecs and ack: the ECS type that carries the GPUs
    machine: Optional[GkeMachine] = None  # gke: the machine type of the GPU nodes (one serving pod each)

    @property
    def tensor_parallel(self) -> int:
        return self.gpus_per_pod

    @property
    def pipeline_parallel(self) -> int:
        return self.pods


@dataclass(frozen=True)
class Workload:
    """Kubernetes targets: what each serving pod gets."""

    namespace: str
    replicas: int  # copies of the model (the fewest, when an autoscaler owns the count)
    cpu: int
    memory_gib: int
    shm_gib: int


def gpu_kind(config: PlacementConfig, target: str) -> str:
    """The configured GPU kind, else the target's default ("" on gke: any kind)."""
    return config.gpu_kind or DEFAULT_GPU.get(target, "")


def resolve_instance_placement(
    config: PlacementConfig,
    target: str,
    model: Optional[ModelSpec],
    engine: Optional[EngineOptions],
    problems: Problems,
) -> Optional[Placement]:
    """ecs and ack: an ECS instance type carries the GPUs; the smallest catalog type that fits."""
    kind, count = gpu_kind(config, target), config.gpu_count
    if config.instance_type:
        instance = ECS_INSTANCE_TYPES.get(config.instance_type)
        if instance is None:
            problems.add(
                "placement.instanceType",
                config.instance_type,
                f"not in the GPU instance catalog: {', '.join(ECS_INSTANCE_TYPES)}",
                f"pick one, or unset it and set placement.gpuKind / placement.gpuCount: "
                f"{problems.rm_command('placement.instanceType')}",
            )
            return None
        if count and count != instance.gpu_count:
            problems.add(
                "placement.gpuCount",
                count,
                f"{instance.name} has {instance.gpu_count} GPU(s)",
                problems.set_command("placement.gpuCount", 0),
            )
        candidates = [instance]
    else:
        if kind not in GPUS or not instance_types_with(kind):
            kinds = sorted({t.gpu for t in ECS_INSTANCE_TYPES.values()})
            problems.add(
                "placement.gpuKind",
                kind,
                f"no ECS instance type in the catalog carries it; available: {', '.join(kinds)}",
                problems.set_command("placement.gpuKind", "A10"),
            )
            return None
        candidates = [t for t in instance_types_with(kind) if not count or t.gpu_count == count]
        if not candidates:
            counts = sorted({t.gpu_count for t in instance_types_with(kind)})
            problems.add(
                "placement.gpuCount",
                count,
                f"no {kind} instance type has that many GPUs; available counts: {counts}",
                problems.set_command("placement.gpuCount", 0),
            )
            return None
    if model is None or engine is None:
        return None
    for instance in candidates:
        placement = try_place(model, engine, GPUS[instance.gpu], instance.gpu_count, instance=instance)
        if isinstance(placement, Placement):
            return placement
    largest = candidates[-1]
    reason = try_place(model, engine, GPUS[largest.gpu], largest.gpu_count, instance=largest)
    fitting = [
        f"{t.name} ({t.gpu_count}x {t.gpu})"
        for t in ECS_INSTANCE_TYPES.values()
        if isinstance(try_place(model, engine, GPUS[t.gpu], t.gpu_count), Placement)
    ]
    fix = (
        f"use an instance type that fits ({problems.set_command('placement.instanceType', '<type>')}): "
        f"{', '.join(fitting)}"
        if fitting
        else "no catalog instance type fits this model"
    )
    does_not_fit(problems, model, largest.name, reason, fix)
    return None


def resolve_pod_placement(
    config: PlacementConfig,
    target: str,
    model: Optional[ModelSpec],
    engine: Optional[EngineOptions],
    problems: Problems,
) -> Optional[Placement]:
    """Kubernetes targets: GPUs per pod and pods per copy; the fewest GPUs (then pods) that fit."""
    kind, count, pods = gpu_kind(config, target), config.gpu_count, config.pods_per_replica
    bad = False
    if kind not in GPUS:
        problems.add(
            "placement.gpuKind",
            kind,
            f"unknown GPU; known: {', '.join(GPUS)}",
            problems.set_command("placement.gpuKind", DEFAULT_GPU[target]),
        )
        bad = True
    if count not in (0, *POD_GPU_COUNTS):
        problems.add(
            "placement.gpuCount",
            count,
            f"GPUs per pod must be 0 (the fewest that fit) or one of {POD_GPU_COUNTS}",
            problems.set_command("placement.gpuCount", 0),
        )
        bad = True
    if pods > 1 and engine is not None and engine.engine != VLLM:
        problems.add(
            "placement.podsPerReplica",
            pods,
            "a model spread over several pods is only supported with vLLM (Ray)",
            f"{problems.set_command('engine.name', 'vllm')}, or {problems.set_command('placement.podsPerReplica', 1)}",
        )
        bad = True
    if bad or model is None or engine is None:
        return None
    gpu = GPUS[kind]
    shapes = sorted(
        (
            (c, p)
            for c in ([count] if count else POD_GPU_COUNTS)
            for p in ([pods] if pods else range(1, 3 if engine.engine == VLLM else 2))
        ),
        key=lambda shape: (shape[0] * shape[1], shape[1]),
    )
    for gpus_per_pod, stages in shapes:
        placement = try_place(model, engine, gpu, gpus_per_pod, stages)
        if isinstance(placement, Placement):
            return placement
    gpus_per_pod, stages = shapes[-1]
    reason = try_place(model, engine, gpu, gpus_per_pod, stages)
    does_not_fit(
        problems,
        model,
        f"{stages} pod(s) x {gpus_per_pod}x {kind}",
        reason,
        "use more GPUs per pod (placement.gpuCount up to 8), more pods (placement.podsPerReplica) "
        "or a larger GPU (placement.gpuKind)",
    )
    return None


def resolve_gke_placement(
    config: PlacementConfig,
    workload: WorkloadConfig,
    machine_type: Optional[str],
    model: Optional[ModelSpec],
    engine: Optional[EngineOptions],
    problems: Problems,
    capacity: Optional[str] = None,
) -> Optional[Placement]:
    """gke: one serving pod per GPU node, taking all its GPUs; the smallest catalog machine that holds the
    model and the pod (gke.machineType, placement.gpuKind and placement.gpuCount narrow the choice), as
    resolve_instance_placement does with ECS types. `capacity`: only machines that mode can get."""
    kind, count, pods = config.gpu_kind, config.gpu_count, config.pods_per_replica or 1
    if machine_type:
        machine = GKE_MACHINES[machine_type]  # the schema allows catalog names only
        if kind and kind != machine.gpu:
            problems.add(
                "placement.gpuKind",
                kind,
                f"gke.machineType {machine.name} carries {machine.gpu}",
                f"{problems.rm_command('placement.gpuKind')} (or pick a {kind} machine in gke.machineType)",
            )
        if count and count != machine.gpu_count:
            problems.add(
                "placement.gpuCount",
                count,
                f"{machine.name} has {machine.gpu_count} GPU(s), and the serving pod takes them all",
                problems.rm_command("placement.gpuCount"),
            )
        candidates = [machine]
    else:
        kinds = sorted({m.gpu for m in GKE_MACHINES.values()})
        if kind and kind not in kinds:
            problems.add(
                "placement.gpuKind",
                kind,
                f"no GKE machine of the catalog carries it; available: {', '.join(kinds)}",
                f"{problems.set_command('placement.gpuKind', kinds[0])}, or "
                f"{problems.rm_command('placement.gpuKind')} (the smallest machine that fits)",
            )
            return None
        candidates = [m for m in gke_machines_with(kind or None) if not count or m.gpu_count == count]
        if not candidates:
            counts = sorted({m.gpu_count for m in gke_machines_with(kind or None)})
            problems.add(
                "placement.gpuCount",
                count,
                f"no {kind or 'GKE'} machine has that many GPUs; available counts: {counts}",
                problems.rm_command("placement.gpuCount"),
            )
            return None
    if pods > 1:
        spread = [m for m in candidates if m.rdma]
        if not spread:
            rdma = [m.name for m in GKE_MACHINES.values() if m.rdma]
            problems.add(
                "placement.podsPerReplica",
                pods,
                f"a copy over several nodes needs RDMA networks, built here for {', '.join(rdma)} only",
                f"{problems.set_command('gke.machineType', rdma[0])}, or "
                f"{problems.set_command('placement.podsPerReplica', 1)}",
            )
            return None
        candidates = spread
    if capacity is not None:
        sellable = [m for m in candidates if capacity in m.capacity]
        if not sellable:
            capacity_problem(problems, capacity, candidates)
            return None
        candidates = sellable
    if model is None or engine is None or not candidates:
        return None
    for machine in candidates:
        placement = try_place(model, engine, GPUS[machine.gpu], machine.gpu_count, pods, machine=machine)
        if isinstance(placement, Placement) and not pod_misfit(workload, machine):
            return placement
    if machine_type:
        machine = candidates[0]
        placement = try_place(model, engine, GPUS[machine.gpu], machine.gpu_count, pods, machine=machine)
        if isinstance(placement, Placement):  # the GPUs hold the model: the pod does not fit the node
            key, value, why = pod_misfit(workload, machine) or ("workload.cpuPerPod", None, "")
            problems.add(key, value, why, f"{problems.set_command(key, 0)} (sized from the GPUs)")
            return None
    largest = candidates[-1]
    reason = try_place(model, engine, GPUS[largest.gpu], largest.gpu_count, pods, machine=largest)
    misfit = pod_misfit(workload, largest)
    if isinstance(reason, Placement) and misfit:  # the GPUs hold the model, the node does not hold the pod
        reason = misfit[2]
    fitting = [
        f"{m.name} ({m.gpu_count}x {m.gpu}; {', '.join(sorted(m.capacity))})"
        for m in gke_machines_with()
        if isinstance(try_place(model, engine, GPUS[m.gpu], m.gpu_count, pods), Placement)
        and not pod_misfit(workload, m)
    ]
    fix = (
        f"use a machine that fits ({problems.set_command('gke.machineType', '<machine>')}, or unset "
        f"placement.gpuKind / placement.gpuCount): {', '.join(fitting)}"
        if fitting
        else "no catalog GKE machine fits this model"
    )
    where = largest.name if len(candidates) == 1 else f"any of {', '.join(m.name for m in candidates)}"
    does_not_fit(problems, model, where, reason, fix)
    return None


# What each capacity mode asks of the user (core.catalog: the modes a machine can be had with).
CAPACITY_NEEDS = {
    RESERVATION: "a specific reservation of the machine in gcp:zone, named in gke.capacity.reservation",
    SPOT: "Spot GPU quota in gcp:region; nodes can be reclaimed at any time",
    FLEX_START: "no reservation: a node comes when capacity is free and runs at most 7 days",
    ON_DEMAND: "on-demand GPU quota in gcp:region",
}


def capacity_problem(problems: Problems, mode: str, machines: list[GkeMachine]) -> None:
    """None of `machines` can be had with `mode`: say which modes can get them and what each needs."""
    modes = [c for c in CAPACITY_MODES if any(c in m.capacity for m in machines)]
    if len(machines) == 1:
        what = f"{machines[0].name} cannot be had {mode} (Compute Engine does not offer it so)"
    else:
        what = f"none of {', '.join(m.name for m in machines)} can be had {mode}"
    per_machine = "; ".join(f"{m.name}: {', '.join(c for c in CAPACITY_MODES if c in m.capacity)}" for m in machines)
    ways = "; ".join(f"{c} ({CAPACITY_NEEDS[c]})" for c in modes)
    fix = problems.set_command("gke.capacity.mode", modes[0])
    if modes[0] == RESERVATION:
        fix += f" && {problems.set_command('gke.capacity.reservation', '<reservation>')}"
    problems.add("gke.capacity.mode", mode, f"{what}; it can be had with: {ways} [{per_machine}]", fix)


def pod_misfit(workload: WorkloadConfig, machine: GkeMachine) -> Optional[tuple[str, int, str]]:
    """(key, value, why) when the serving pod does not fit the machine's allocatable CPU or memory; else None."""
    cpu, memory, _ = pod_size(workload, machine.gpu_count, GKE)
    cpu_room = machine.allocatable_cpu - GKE_NODE_HEADROOM_CPU
    memory_room = machine.allocatable_memory_gib - GKE_NODE_HEADROOM_MEMORY_GIB
    if cpu > cpu_room:
        return (
            "workload.cpuPerPod",
            cpu,
            f"{cpu} vCPUs do not fit on {machine.name}: {machine.allocatable_cpu:.1f} allocatable, less "
            f"{GKE_NODE_HEADROOM_CPU:g} for GKE's daemons and the GCS FUSE sidecar, leave {cpu_room:.1f}",
        )
    if memory > memory_room:
        return (
            "workload.memoryGibPerPod",
            memory,
            f"{memory} GiB do not fit on {machine.name}: {machine.allocatable_memory_gib:.1f} GiB allocatable, "
            f"less {GKE_NODE_HEADROOM_MEMORY_GIB:g} for GKE's daemons and the GCS FUSE sidecar, leave "
            f"{memory_room:.1f}",
        )
    return None


def does_not_fit(problems: Problems, model: ModelSpec, where: str, reason: object, fix: str) -> None:
    if isinstance(reason, sizing.Fit):
        if reason.weights_gib + reason.overhead_gib <= reason.available_gib:
            fix += ", or lower engine.maxModelLen"
        reason = reason.describe()
    problems.add("model.name", model.name, f"cannot be served on {where}: {reason}", fix)


def try_place(
    model: ModelSpec,
    engine: EngineOptions,
    gpu: Gpu,
    gpus_per_pod: int,
    pods: int = 1,
    instance: Optional[InstanceType] = None,
    machine: Optional[GkeMachine] = None,
) -> object:
    """A Placement when it fits and the engines accept the split; else the Fit that failed or the reason."""
    problem = sizing.parallelism_problem(model, gpus_per_pod)
    if problem:
        return problem
    budget = sizing.fit(
        model, gpu, gpus_per_pod * pods, engine.max_model_len, engine.gpu_memory_utilization, pipeline_parallel=pods
    )
    return (
        Placement(gpu, gpus_per_pod, budget, pods=pods, instance=instance, machine=machine) if budget.fits else budget
    )


def pod_size(config: WorkloadConfig, gpus: int, target: str) -> tuple[int, int, int]:
    """(vCPUs, memory GiB, /dev/shm GiB) of a serving pod with `gpus` GPUs: as configured, else from the GPUs."""
    # Serverless GPU pods come with generous CPU and memory (Compute Nest's ACS QwQ pod: 16 vCPU, 128 GiB per
    # GPU); on a node pool or an existing cluster the pod must fit next to the node's own daemons.
    cpu_per_gpu, cpu_cap, memory_per_gpu, memory_cap = (16, 64, 128, 512) if target == ACS else (4, 32, 24, 192)
    cpu = config.cpu_per_pod or min(cpu_per_gpu * gpus, cpu_cap)
    memory = config.memory_gib_per_pod or min(memory_per_gpu * gpus, memory_cap)
    shm = config.shm_gib or max(1, min(8 * gpus, memory // 4))
    return cpu, memory, shm


def resolve_workload(
    config: WorkloadConfig, replicas: int, placement: Optional[Placement], target: str, problems: Problems
) -> Workload:
    """Pod sizes: given, or derived from the GPUs; /dev/shm counts against the pod's memory."""
    gpus = placement.gpus_per_pod if placement else 1
    cpu, memory, shm = pod_size(config, gpus, target)
    if shm >= memory:
        problems.add(
            "workload.shmGib",
            shm,
            f"must be smaller than the pod's {memory} GiB of memory (/dev/shm counts against it)",
            problems.set_command("workload.shmGib", max(1, memory // 4)),
        )
    instance = placement.instance if placement else None
    if target == ACK and instance is not None:
        _fits_the_node(config, cpu, memory, instance, problems)
    return Workload(namespace=config.namespace, replicas=replicas, cpu=cpu, memory_gib=memory, shm_gib=shm)


# Beside the engine, the serving pod's gateway container asks for its own request (core.gateway).
GATEWAY_CPU, GATEWAY_MEMORY_GIB = gateway.REQUEST_MILLI_CPU / 1000, gateway.REQUEST_MEMORY_MIB / 1024


def _fits_the_node(config: WorkloadConfig, cpu: int, memory: int, instance: InstanceType, problems: Problems) -> None:
    """ack: one serving pod per GPU node, so the pod must fit the node type. Checked against the type's own vCPUs and
    memory, a bound that is certain; what a node can allocate is less still (ACK's "Resource reservation policy":
    the kubelet, the runtime and the system keep some), so a pod close to the bound may stay Pending."""
    for key, configured, asked, extra, has, unit in (
        ("workload.cpuPerPod", config.cpu_per_pod, cpu, GATEWAY_CPU, instance.vcpu, "vCPUs"),
        ("workload.memoryGibPerPod", config.memory_gib_per_pod, memory, GATEWAY_MEMORY_GIB, instance.memory_gib, "GiB"),
    ):
        if asked + extra > has:
            fix = (
                f"{problems.rm_command(key)} (sized from the GPUs)"
                if configured
                else problems.set_command("placement.instanceType", "<a GPU type with more>")
            )
            problems.add(
                key,
                asked,
                f"with the gateway's {extra:g} {unit} is more than the {has} {unit} of a GPU node ({instance.name}); "
                "what a node can allocate is less still (ACK reserves some for the kubelet and the system)",
                fix,
            )
