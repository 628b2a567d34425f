"""Will the model fit, how big must the disk be, and how long until it serves?

One memory model serves every target: per GPU, the shard of the weights, the KV cache for one
sequence of the maximum length, and a fixed runtime overhead must fit in memory x utilisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from core import durations
from core.catalog import GIB, Gpu, ModelSpec

# CUDA context, activations for the prefill batch and CUDA graphs, per GPU.
RUNTIME_OVERHEAD_GIB_PER_GPU = 2.0
KV_CACHE_DTYPE_BYTES = 2  # bf16 KV cache, the engines' default

# A download when the engine starts (gke.modelSource download), conservatively 3 GiB/min (~50 MB/s), for the serving
# pods' startup windows: below the duration model's Hugging Face figure (core.durations.download_at_start), so the
# windows cover what the estimate says.
DOWNLOAD_GIB_PER_MIN = 3.0

# Disk: OS and logs, the engine image (~30 GB unpacked), and 10% + 20 GiB headroom for the model.
OS_AND_IMAGE_GIB = 100


@dataclass(frozen=True)
class Fit:
    """Per-GPU memory budget of one placement."""

    gpu_count: int
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    available_gib: float

    @property
    def needed_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.overhead_gib

    @property
    def fits(self) -> bool:
        return self.needed_gib <= self.available_gib

    def describe(self) -> str:
        return (
            f"needs {self.needed_gib:.1f} GiB per GPU (weights {self.weights_gib:.1f} + KV cache "
            f"{self.kv_cache_gib:.1f} + runtime {self.overhead_gib:.1f}) but {self.gpu_count} GPU(s) give "
            f"{self.available_gib:.1f} GiB each at this memory utilisation"
        )


def kv_bytes_per_token_per_gpu(model: ModelSpec, tensor_parallel: int) -> float:
    """KV cache bytes for one token on one GPU; MLA latents are replicated on every rank."""
    if model.is_mla:
        return model.layers * (model.mla_kv_lora_rank + model.mla_rope_dim) * KV_CACHE_DTYPE_BYTES
    kv_heads_per_gpu = max(1, model.kv_heads // tensor_parallel)
    return 2 * model.layers * kv_heads_per_gpu * model.head_dim * KV_CACHE_DTYPE_BYTES


def fit(
    model: ModelSpec, gpu: Gpu, gpu_count: int, max_model_len: int, utilisation: float, pipeline_parallel: int = 1
) -> Fit:
    """Memory budget when the model is split over `gpu_count` GPUs (TP x PP)."""
    tensor_parallel = gpu_count // pipeline_parallel
    layers_share = 1 / pipeline_parallel
    return Fit(
        gpu_count=gpu_count,
        weights_gib=model.weights_gib / gpu_count,
        kv_cache_gib=kv_bytes_per_token_per_gpu(model, tensor_parallel) * max_model_len * layers_share / GIB,
        overhead_gib=RUNTIME_OVERHEAD_GIB_PER_GPU,
        available_gib=gpu.memory_gib * utilisation,
    )


def parallelism_problem(model: ModelSpec, tensor_parallel: int) -> Optional[str]:
    """Why the engines would refuse this tensor-parallel size, or None when it is valid."""
    if model.attention_heads % tensor_parallel:
        return (
            f"tensor-parallel size {tensor_parallel} does not divide the {model.attention_heads} "
            f"attention heads of {model.name}"
        )
    if not model.is_mla:
        kv = model.kv_heads
        if (kv >= tensor_parallel and kv % tensor_parallel) or (kv < tensor_parallel and tensor_parallel % kv):
            return (
                f"tensor-parallel size {tensor_parallel} and the {kv} KV heads of {model.name} must divide one another"
            )
    return None


def disk_gib(model: ModelSpec) -> int:
    """Root disk for OS, engine image and one copy of the weights, rounded up to 10 GiB."""
    raw = OS_AND_IMAGE_GIB + model.weights_gib * 1.1 + 20
    return int(math.ceil(raw / 10) * 10)


# Fluid's cache (acs.fluid): the whole model and a margin, in JindoRuntime workers of this much memory each.
FLUID_WORKER_CACHE_GIB = 120


def fluid_cache_gib(model: ModelSpec) -> int:
    """Cache for the whole model and 10% + 10 GiB: a warm cache then holds every file the engine reads."""
    return int(model.weights_gib * 1.1) + 10


def fluid_workers(cache_gib: int, worker_cache_gib: int = FLUID_WORKER_CACHE_GIB) -> int:
    """The fewest JindoRuntime workers whose memory holds the cache."""
    return math.ceil(cache_gib / worker_cache_gib)


def load_minutes(model: ModelSpec, tensor_parallel: int = 1) -> int:
    """Time from container start to a healthy engine, weights on local disk or a mount: core.durations.load_minutes
    (engine start, the load, the warm-up of the model's class), whole minutes."""
    return durations.load_minutes(model, tensor_parallel)
