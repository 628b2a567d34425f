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
    # ACS `alibabacloud.com/gpu-model-series` label value. Only series confirmed in the reference
    # deployments are listed; others can be given with llm:acsGpuSeries.
    acs_series: Optional[str] = None
    # NVIDIA's open kernel modules support Turing and newer only; Volta (V100) needs the proprietary ones,
    # and Blackwell needs the open ones (NVIDIA's driver README, "open GPU kernel modules"; notes: a public
    # log of Pascal failing with -open).
    open_kernel_modules: bool = True

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


# nvidia-smi totals for the common SKUs; an H20 shows 97871 MiB, an A10 23028 MiB.
GPUS: dict[str, Gpu] = {
    g.name: g
    for g in (
        Gpu("A10", 23028),
        Gpu("V100", 32768, bf16=False, open_kernel_modules=False),
        Gpu("L20", 46068),
        Gpu("H20", 97871, acs_series="H20"),
        Gpu("A100", 81920),
        Gpu("H100", 81559),
        Gpu("H800", 81559),
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


# From Alibaba Cloud's instance family documentation (see ../shared/reference.md section 2).
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
