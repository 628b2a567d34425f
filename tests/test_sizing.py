"""Sizing: real model/GPU pairs, KV cache arithmetic, tensor-parallel rules, disk and readiness."""

import pytest

from core import sizing
from core.catalog import GPUS, MODELS

KIB = 1024


@pytest.mark.parametrize(
    "model,kib_per_token",
    [
        ("QwQ-32B", 256),
        ("Qwen3-32B", 256),
        ("DeepSeek-R1-Distill-Llama-70B", 320),
        ("Qwen3-235B-A22B", 188),
    ],
)
def test_kv_cache_per_token_matches_the_reference_figures(model, kib_per_token):
    assert sizing.kv_bytes_per_token_per_gpu(MODELS[model], 1) == kib_per_token * KIB


def test_mla_kv_cache_is_replicated_not_sharded():
    r1 = MODELS["DeepSeek-R1"]
    per_token = sizing.kv_bytes_per_token_per_gpu(r1, 8)
    assert per_token == sizing.kv_bytes_per_token_per_gpu(r1, 1) == 61 * (512 + 64) * 2  # ~69 KiB


def test_kv_heads_are_split_across_tensor_parallel_ranks_but_never_below_one():
    qwq = MODELS["QwQ-32B"]  # 8 KV heads
    assert sizing.kv_bytes_per_token_per_gpu(qwq, 4) == 256 * KIB / 4
    assert sizing.kv_bytes_per_token_per_gpu(qwq, 16) == 256 * KIB / 8


@pytest.mark.parametrize(
    "model,gpu,count,fits",
    [
        ("QwQ-32B", "A10", 4, True),
        ("QwQ-32B", "A10", 1, False),
        ("DeepSeek-R1", "A10", 8, False),
        ("DeepSeek-R1-Distill-Qwen-7B", "A10", 1, True),
        ("QwQ-32B", "H20", 1, True),
        ("Qwen3-235B-A22B", "H20", 8, True),
    ],
)
def test_real_model_gpu_pairs(model, gpu, count, fits):
    assert sizing.fit(MODELS[model], GPUS[gpu], count, 32768, 0.9).fits is fits


def test_deepseek_r1_on_8x_h20_leaves_little_room_for_kv_cache():
    budget = sizing.fit(MODELS["DeepSeek-R1"], GPUS["H20"], 8, 32768, 0.9)
    assert budget.fits and budget.available_gib - budget.needed_gib < 2.0


def test_longer_context_needs_more_memory():
    qwq, a10 = MODELS["QwQ-32B"], GPUS["A10"]
    assert sizing.fit(qwq, a10, 4, 40960, 0.9).needed_gib > sizing.fit(qwq, a10, 4, 8192, 0.9).needed_gib


@pytest.mark.parametrize(
    "model,tp,ok",
    [
        ("QwQ-32B", 8, True),
        ("QwQ-32B", 4, True),
        ("QwQ-32B", 3, False),
        ("DeepSeek-R1-Distill-Qwen-7B", 8, False),
        ("DeepSeek-R1-Distill-Qwen-7B", 2, True),
        ("Qwen3-235B-A22B", 8, True),
        ("DeepSeek-R1", 16, True),
    ],
)
def test_tensor_parallel_must_divide_heads(model, tp, ok):
    assert (sizing.parallelism_problem(MODELS[model], tp) is None) is ok


def test_disk_holds_os_image_and_weights():
    qwq = MODELS["QwQ-32B"]
    assert sizing.disk_gib(qwq) >= qwq.weights_gib + sizing.OS_AND_IMAGE_GIB
    assert sizing.disk_gib(qwq) % 10 == 0


def test_every_gke_machine_names_a_known_gpu_capacity_and_room_for_the_file_cache():
    from core.catalog import CAPACITY_MODES, GKE_MACHINES

    for machine in GKE_MACHINES.values():
        gpu = GPUS[machine.gpu]
        assert machine.capacity and machine.capacity <= set(CAPACITY_MODES), machine.name
        # GCS FUSE caches the weights on the local SSD: any model the GPUs hold fits twice over.
        assert machine.local_ssd_gib >= 2 * machine.gpu_count * gpu.memory_gib, machine.name
        assert machine.accelerator.startswith("nvidia-") and machine.allocatable_cpu < machine.vcpu


def test_gke_machines_bundle_the_local_ssds_google_names():
    from core.catalog import GKE_MACHINES

    # cluster-toolkit disk_definitions.tf (8g shapes) and GCE's attached Local SSD column (smaller A3 High).
    bundled = {m.name: m.local_ssds for m in GKE_MACHINES.values() if m.local_ssd_bundled}
    assert bundled == {
        "a3-highgpu-1g": 2,
        "a3-highgpu-2g": 4,
        "a3-highgpu-4g": 8,
        "a3-highgpu-8g": 16,
        "a3-ultragpu-8g": 32,
        "a4-highgpu-8g": 32,
    }


def test_gke_allocatable_follows_gkes_reservation_tiers():
    from core.catalog import GKE_MACHINES

    g2 = GKE_MACHINES["g2-standard-8"]  # 8 vCPU: 0.06 + 0.01 + 2 x 0.005 + 4 x 0.0025 = 0.09 reserved
    assert round(g2.allocatable_cpu, 3) == 7.91
    # 32 GiB: 1 + 0.8 + 0.8 + 16 x 0.06 = 3.56 GiB reserved, plus 100 MiB for evictions
    assert round(g2.allocatable_memory_gib, 3) == round(32 - 3.56 - 100 / 1024, 3)
