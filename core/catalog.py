"""What we know about models, GPUs and GPU instance types.

Model numbers come from each model's own config.json (layers, attention and KV heads, head_dim,
max_position_embeddings) and from the size of its published weights; they drive the sizing check
and the engine command line, so a wrong number here means a wrong deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

GIB = 1024**3


@dataclass(frozen=True)
class ModelSpec:
    """A servable model: sizing numbers plus where to download it from."""

    name: str  # catalog key, used in config (llm:model)
    modelscope_id: str
    hf_id: str
    params_billion: float
    weight_dtype: str  # bf16 | fp8 | int4
    layers: int
    attention_heads: int
    kv_heads: int  # equals attention_heads for MHA; ignored for MLA models
    head_dim: int
    context_length: int  # max_position_embeddings
    gated: bool  # Hugging Face asks for accepted terms and a token before it serves the files
    reasoning: Optional[str] = None  # reasoning output format: "deepseek_r1" | "qwen3"
    weights_gb: Optional[float] = None  # published checkpoint size (decimal GB) when not params x dtype
    mla_kv_lora_rank: int = 0  # DeepSeek MLA: latent KV width per layer
    mla_rope_dim: int = 0
    trust_remote_code: bool = False

    @property
    def is_mla(self) -> bool:
        return self.mla_kv_lora_rank > 0

    @property
    def weight_bytes(self) -> float:
        if self.weights_gb is not None:
            return self.weights_gb * 1e9
        return self.params_billion * 1e9 * DTYPE_BYTES[self.weight_dtype]

    @property
    def weights_gib(self) -> float:
        return self.weight_bytes / GIB


DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}

# Numbers from each model's config.json on ModelScope / Hugging Face. None of these repositories is gated: their
# Hugging Face pages serve the files without an access request (Apache-2.0 for Qwen, MIT for DeepSeek).
MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "Qwen3-235B-A22B",
            "Qwen/Qwen3-235B-A22B",
            "Qwen/Qwen3-235B-A22B",
            235.1,
            "bf16",
            layers=94,
            attention_heads=64,
            kv_heads=4,
            head_dim=128,
            context_length=40960,
            gated=False,
            reasoning="qwen3",
        ),
        ModelSpec(
            "Qwen3-32B",
            "Qwen/Qwen3-32B",
            "Qwen/Qwen3-32B",
            32.8,
            "bf16",
            layers=64,
            attention_heads=64,
            kv_heads=8,
            head_dim=128,
            context_length=40960,
            gated=False,
            reasoning="qwen3",
        ),
        ModelSpec(
            "QwQ-32B",
            "Qwen/QwQ-32B",
            "Qwen/QwQ-32B",
            32.8,
            "bf16",
            layers=64,
            attention_heads=40,
            kv_heads=8,
            head_dim=128,
            context_length=40960,
            gated=False,
            reasoning="deepseek_r1",
        ),
        ModelSpec(
            "Qwen2.5-32B-Instruct",
            "Qwen/Qwen2.5-32B-Instruct",
            "Qwen/Qwen2.5-32B-Instruct",
            32.8,
            "bf16",
            layers=64,
            attention_heads=40,
            kv_heads=8,
            head_dim=128,
            context_length=32768,
            gated=False,
        ),
        ModelSpec(
            "DeepSeek-R1-Distill-Llama-70B",
            "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
            "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
            70.6,
            "bf16",
            layers=80,
            attention_heads=64,
            kv_heads=8,
            head_dim=128,
            context_length=131072,
            gated=False,
            reasoning="deepseek_r1",
        ),
        ModelSpec(
            "DeepSeek-R1-Distill-Qwen-32B",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
            32.8,
            "bf16",
            layers=64,
            attention_heads=40,
            kv_heads=8,
            head_dim=128,
            context_length=131072,
            gated=False,
            reasoning="deepseek_r1",
        ),
        ModelSpec(
            "DeepSeek-R1-Distill-Qwen-7B",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
            7.6,
            "bf16",
            layers=28,
            attention_heads=28,
            kv_heads=4,
            head_dim=128,
            context_length=131072,
            gated=False,
            reasoning="deepseek_r1",
        ),
        # FP8 checkpoint with some bf16 tensors: about 0.69 TB on disk, not 671 GB.
        ModelSpec(
            "DeepSeek-R1",
            "deepseek-ai/DeepSeek-R1",
            "deepseek-ai/DeepSeek-R1",
            671.0,
            "fp8",
            layers=61,
            attention_heads=128,
            kv_heads=128,
            head_dim=128,
            context_length=163840,
            gated=False,
            reasoning="deepseek_r1",
            weights_gb=689.0,
            mla_kv_lora_rank=512,
            mla_rope_dim=64,
        ),
    )
}


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_mib: int  # total memory as nvidia-smi reports it; vLLM's utilisation is a fraction of this
    bf16: bool = True  # Volta (V100) has no bf16: bf16 checkpoints must run as fp16
    # ACS `alibabacloud.com/gpu-model-series` label value. Only series confirmed in Compute Nest's
    # deployments are listed; others can be given with llm:acsGpuSeries.
    acs_series: Optional[str] = None
    # NVIDIA's open kernel modules support Turing and newer only; Volta (V100) needs the proprietary ones,
    # and Blackwell needs the open ones (NVIDIA's driver README, "open GPU kernel modules"; notes: a public
    # log of Pascal failing with -open).
    open_kernel_modules: bool = True

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


# nvidia-smi totals for the common SKUs; an H20 shows 97871 MiB, an A10 23028 MiB, an L4 23034 MiB and an H200
# 143771 MiB (nvidia-smi output quoted in public issues and logs).
GPUS: dict[str, Gpu] = {
    g.name: g
    for g in (
        Gpu("A10", 23028),
        Gpu("V100", 32768, bf16=False, open_kernel_modules=False),
        Gpu("L4", 23034),
        Gpu("L20", 46068),
        Gpu("H20", 97871, acs_series="H20"),
        Gpu("A100", 81920),
        Gpu("H100", 81559),
        Gpu("H800", 81559),
        Gpu("H200", 143771),
        Gpu("B200", 183359),
    )
}


@dataclass(frozen=True)
class InstanceType:
    """An ECS GPU instance type. `uefi_only` types need a UEFI image (ebmgn8v)."""

    name: str
    gpu: str
    gpu_count: int
    vcpu: int
    memory_gib: int
    uefi_only: bool = False
    nvswitch: bool = False  # HGX boards: NVIDIA Fabric Manager must run


# From Alibaba Cloud's instance family documentation (the instance family pages of each type).
ECS_INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        InstanceType("ecs.gn7i-c8g1.2xlarge", "A10", 1, 8, 30),
        InstanceType("ecs.gn7i-c16g1.4xlarge", "A10", 1, 16, 60),
        InstanceType("ecs.gn7i-4x.8xlarge", "A10", 4, 32, 128),
        InstanceType("ecs.gn7i-8x.16xlarge", "A10", 8, 64, 256),
        InstanceType("ecs.gn6e-c12g1.3xlarge", "V100", 1, 12, 92),
        InstanceType("ecs.gn6e-c12g1.6xlarge", "V100", 2, 24, 182),
        InstanceType("ecs.gn6e-c12g1.12xlarge", "V100", 4, 48, 368),
        InstanceType("ecs.gn6e-c12g1.24xlarge", "V100", 8, 96, 736),
        InstanceType("ecs.ebmgn8v.48xlarge", "H20", 8, 192, 1024, uefi_only=True, nvswitch=True),
    )
}


def instance_types_with(gpu: str) -> list[InstanceType]:
    """Catalog types carrying `gpu`, smallest first (fewest GPUs, then fewest vCPUs)."""
    return sorted((t for t in ECS_INSTANCE_TYPES.values() if t.gpu == gpu), key=lambda t: (t.gpu_count, t.vcpu))


# --- GKE GPU machines --------------------------------------------------------------------------------------
# How a GKE node pool can get the capacity (core.config.gke capacity modes).
ON_DEMAND = "on-demand"  # the standard provisioning model (consuming a matching non-specific reservation first)
RESERVATION = "reservation"  # a specific reservation, by name
SPOT = "spot"  # Spot VMs: discounted, reclaimed at any time
FLEX_START = "flex-start"  # Flex-start (Dynamic Workload Scheduler): capacity when available, for a bounded time
CAPACITY_MODES = (ON_DEMAND, RESERVATION, SPOT, FLEX_START)

LOCAL_SSD_GIB = 375  # one Local SSD disk (GCE "Attached Local SSD" column: multiples of 375 GiB)

# GCE-AO: Compute Engine "Accelerator-optimized machine family" and the G2 section of "GPU machine types"
# (docs.cloud.google.com/compute/docs/accelerator-optimized-machines, last updated 2026-04-13): machine shapes,
# GPUs, attached Local SSD and how the capacity can be had. Accelerator type strings: GoogleCloudPlatform/
# cluster-toolkit@1047080 pkg/config/machine_mappings.json. Local SSD counts used as ephemeral storage:
# cluster-toolkit modules/compute/gke-node-pool/disk_definitions.tf (A3 8g 16, A3 Ultra and A4 32), GCE-AO for
# the smaller A3 High shapes (2/4/8 disks) and the G2 maxima.
GCE_AO = "docs.cloud.google.com/compute/docs/accelerator-optimized-machines (2026-04-13)"
# Capacity per family. GCE-AO, A3 High 1g/2g/4g: "you must create instances by using Spot VMs or Flex-start VMs";
# A3 Ultra and A4: "you must reserve capacity to create instances or clusters, use Spot VMs, use Flex-start VMs,
# or create a resize request in a MIG" (no plain on-demand). a3-highgpu-8g: reservations, Spot and Flex-start
# are documented; on demand is not (the stored copy of GCE-AO's consumption table lost its marks), so it is not
# offered here. G2 is a general-purpose GPU family sold on demand; which of its cells of that table allow
# Flex-start was not captured either (not verified).
G2_CAPACITY = frozenset({ON_DEMAND, RESERVATION, SPOT, FLEX_START})
A3_HIGH_SMALL_CAPACITY = frozenset({SPOT, FLEX_START})
RESERVED_CAPACITY = frozenset({RESERVATION, SPOT, FLEX_START})


@dataclass(frozen=True)
class GkeMachine:
    """A Compute Engine GPU machine type as a GKE node: its GPUs, what GKE needs to run it, how it can be had."""

    name: str
    family: str
    accelerator: str  # GKE guest accelerator type (nvidia-l4, nvidia-h100-80gb, nvidia-h200-141gb, nvidia-b200)
    gpu: str  # key in GPUS
    gpu_count: int
    vcpu: int
    memory_gib: int  # GCE's "memory (GB)" column, binary gigabytes as the API's memoryMb gives them
    local_ssds: int  # Local SSD disks (LOCAL_SSD_GIB each) backing the node's ephemeral storage
    local_ssd_bundled: bool  # the machine always has these disks (A3, A4); G2's are optional, chosen here
    capacity: frozenset[str]  # CAPACITY_MODES that can get this machine
    min_gke_version: Optional[str]  # the oldest GKE version Google's recipes name for it; None: none found
    min_driver: Optional[str]  # the NVIDIA driver branch the GPU needs, where a source states one
    rdma: bool = False  # the program builds RoCE networks for it (a copy over several nodes)

    @property
    def local_ssd_gib(self) -> int:
        return self.local_ssds * LOCAL_SSD_GIB

    @property
    def allocatable_cpu(self) -> float:
        """vCPUs GKE leaves to pods: 6% of the first core, 1% of the next, 0.5% of the next 2, 0.25% above 4
        (GKE "Plan GKE node sizes", cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes)."""
        tiers = ((1, 0.06), (1, 0.01), (2, 0.005), (float("inf"), 0.0025))
        return self.vcpu - _tiered(self.vcpu, tiers)

    @property
    def allocatable_memory_gib(self) -> float:
        """Memory GKE leaves to pods: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the
        next 112, 2% above 128, and 100 MiB for evictions (same page)."""
        tiers = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (float("inf"), 0.02))
        return self.memory_gib - _tiered(self.memory_gib, tiers) - 100 / 1024


def _tiered(total: float, tiers: tuple[tuple[float, float], ...]) -> float:
    reserved, left = 0.0, total
    for size, share in tiers:
        part = min(left, size)
        reserved += part * share
        left -= part
        if left <= 0:
            break
    return reserved


# Minimum GKE versions (AI-Hypercomputer/gpu-recipes@2e1fd5e docs/configuring-environment-gke-a4.md:41
# "v1.32.4-gke.1236000 or later", ...-a3-ultra.md:41 1.31.7-gke.1265000). G2 and A3 High: no minimum found (both
# long supported on GKE; the 1g/2g/4g A3 High shapes since a release note of 2024-10-17, version not captured).
A4_MIN_GKE = "1.32.4-gke.1236000"
A3_ULTRA_MIN_GKE = "1.31.7-gke.1265000"
# Drivers: B200 needs the R570 branch (COS board-overlays af3ca4ea: "The LATEST tag has been updated to point to the
# stable 570.133.20 Production Branch"); L4 on COS needs 525.60.13 or later (GCE-AO). H100/H200: not captured.


def _g2(name: str, gpus: int, vcpu: int, memory: int, ssds: int) -> GkeMachine:
    return GkeMachine(name, "G2", "nvidia-l4", "L4", gpus, vcpu, memory, ssds, False, G2_CAPACITY, None, "525.60.13")


def _a3_high(name: str, gpus: int, vcpu: int, memory: int, ssds: int, capacity: frozenset[str]) -> GkeMachine:
    return GkeMachine(name, "A3 High", "nvidia-h100-80gb", "H100", gpus, vcpu, memory, ssds, True, capacity, None, None)


GKE_MACHINES: dict[str, GkeMachine] = {
    m.name: m
    for m in (
        # G2: 1, 2, 4 or 8 x L4 24 GB; Local SSD optional, here the machine's maximum (1 disk per L4).
        _g2("g2-standard-4", 1, 4, 16, 1),
        _g2("g2-standard-8", 1, 8, 32, 1),
        _g2("g2-standard-12", 1, 12, 48, 1),
        _g2("g2-standard-16", 1, 16, 64, 1),
        _g2("g2-standard-24", 2, 24, 96, 2),
        _g2("g2-standard-32", 1, 32, 128, 1),
        _g2("g2-standard-48", 4, 48, 192, 4),
        _g2("g2-standard-96", 8, 96, 384, 8),
        # A3 High: H100 80 GB; bundled Local SSD 750/1500/3000/6000 GiB.
        _a3_high("a3-highgpu-1g", 1, 26, 234, 2, A3_HIGH_SMALL_CAPACITY),
        _a3_high("a3-highgpu-2g", 2, 52, 468, 4, A3_HIGH_SMALL_CAPACITY),
        _a3_high("a3-highgpu-4g", 4, 104, 936, 8, A3_HIGH_SMALL_CAPACITY),
        _a3_high("a3-highgpu-8g", 8, 208, 1872, 16, RESERVED_CAPACITY),
        # A3 Ultra: 8 x H200 141 GB; 12000 GiB bundled Local SSD.
        GkeMachine(
            name="a3-ultragpu-8g",
            family="A3 Ultra",
            accelerator="nvidia-h200-141gb",
            gpu="H200",
            gpu_count=8,
            vcpu=224,
            memory_gib=2952,
            local_ssds=32,
            local_ssd_bundled=True,
            capacity=RESERVED_CAPACITY,
            min_gke_version=A3_ULTRA_MIN_GKE,
            min_driver=None,
        ),
        # A4: 8 x B200 180 GB; 12000 GiB bundled Local SSD; the DeepSeek-R1 GKE recipe's, and the machine the RoCE
        # networks are built for (a copy over several nodes: cluster-toolkit examples/gke-a4).
        GkeMachine(
            name="a4-highgpu-8g",
            family="A4",
            accelerator="nvidia-b200",
            gpu="B200",
            gpu_count=8,
            vcpu=224,
            memory_gib=3968,
            local_ssds=32,
            local_ssd_bundled=True,
            capacity=RESERVED_CAPACITY,
            min_gke_version=A4_MIN_GKE,
            min_driver="570",
            rdma=True,
        ),
    )
}


def gke_machine_order(machine: GkeMachine) -> tuple[int, int, int]:
    """Smallest first: fewest GPUs, then the smaller GPU, then fewest vCPUs."""
    return (machine.gpu_count, GPUS[machine.gpu].memory_mib, machine.vcpu)


def gke_machines_with(gpu: Optional[str] = None) -> list[GkeMachine]:
    """Catalog machines (carrying `gpu`, or any), smallest first."""
    return sorted((m for m in GKE_MACHINES.values() if gpu is None or m.gpu == gpu), key=gke_machine_order)
