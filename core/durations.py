"""How long the slow steps take, from the bandwidth a stack is configured with: one model for every deadline.

Weights and images reach an Alibaba VPC through its NAT gateway, whose throughput is its EIP's bandwidth
(inbound equals outbound above 10 Mbit/s). Every readiness timeout and Job deadline of the Alibaba targets
is derived here from `network.natBandwidthMbps` (or the ECS host's own public bandwidth), so raising the
bandwidth shortens them and lowering it lengthens them, instead of several constants each assuming a rate.

A plan is a list of steps, each with its minutes and where the figure comes from; a deadline is the plan's
total times a margin, never below a floor. Figures are marked S (sourced), D (derived from sourced figures)
or A (assumed: nothing better was found offline); `../shared/audits/time-to-ready.md` has the full table.
Nothing here was measured on Alibaba Cloud.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core import sizing
from core.catalog import ModelSpec

GB_PER_GIB = 1.073741824


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    kind: str  # S sourced, D derived, A assumed
    source: str


# --- Figures ------------------------------------------------------------------------------------------------
ENGINE_IMAGE_GB = Figure(12.0, "GB compressed", "S", "vllm-project/vllm#27154 ('around 12 GB'); EGS assumed alike")
ENGINE_IMAGE_UNPACKED_GB = Figure(28.6, "GB", "S", "vllm-project/vllm#22377 (28.6 GB unpacked); EGS assumed alike")
SLIM_IMAGE_GB = Figure(0.5, "GB compressed", "A", "a Python base image; not measured")
EXTRACT_MB_PER_S = Figure(250.0, "MB/s", "A", "layer extraction on ESSD; time-to-ready.md 'extract'")
MODELSCOPE_MB_PER_S = Figure(100.0, "MB/s", "A", "no published ModelScope throughput; time-to-ready.md 'modelscope'")
OSSFS_WRITE_MB_PER_S = Figure(
    118.0, "MB/s", "S", "ossfs 1.0 write, alibabacloud.com/help/en/oss/developer-reference/ossfs2-0-client-stress-test"
)
ECS_CREATE_AND_BOOT_MIN = Figure(2.3, "min", "D", "network 8 s, RunInstances 75 s, boot 45 s (time-to-ready.md)")
APT_BASE_MIN = Figure(1.0, "min", "A", "apt-get update and base packages from the internal mirror")
HOST_SOFTWARE_MIN = Figure(4.0, "min", "D", "driver 170 s (DKMS 80-150 s, Azure/AgentBaker#8661), Docker, toolkit")
POD_START_MIN = Figure(0.5, "min", "A", "a CPU pod scheduled and started (ACS: acs_cpu_pod)")
GPU_CAPACITY_MIN = Figure(2.0, "min", "A", "an ACS GPU pod's capacity (acs_gpu_pod); an existing node: 0")
PIP_INSTALL_MIN = Figure(0.5, "min", "A", "the downloader from the internal PyPI mirror")
POLL_MIN = Figure(0.5, "min", "D", "the readiness command polls every 15-20 s")
NETWORK_MIN = Figure(0.4, "min", "S", "VPC and vSwitch 'Creation complete after 7s/8s' (time-to-ready.md 'vpc')")
NAT_MIN = Figure(1.2, "min", "A", "NAT gateway, EIP and SNAT entry (time-to-ready.md 'nat')")
ACS_CLUSTER_MIN = Figure(8.0, "min", "A", "anchor: 'about 15 minutes' for ACK, terraform-provider-alicloud docs")
ACK_CLUSTER_MIN = Figure(
    10.0, "min", "A", "anchor: 'about 15 minutes', terraform-provider-alicloud cs_managed_kubernetes"
)
CPU_POOL_MIN = Figure(5.0, "min", "A", "a CPU node pool's nodes ready (time-to-ready.md 'pool_cpu')")
GPU_POOL_MIN = Figure(8.0, "min", "A", "GKE GPU node 9 min (codalab-worksheets#4042); time-to-ready.md 'pool_gpu'")
LB_ALIBABA_MIN = Figure(0.75, "min", "A", "a CLB/NLB for a LoadBalancer Service (time-to-ready.md 'lb_ali')")
LB_GCP_MIN = Figure(1.5, "min", "A", "an internal passthrough LB for a Service (time-to-ready.md 'lb_gcp')")
GCP_APIS_MIN = Figure(1.7, "min", "D", "service enablement 1 min + VPC 22 s (time-to-ready.md 'gcp_api', 'gcp_vpc')")
GKE_CLUSTER_MIN = Figure(9.0, "min", "A", "zonal cluster ~6 min (astronomer/astro-sdk benchmark terraform), 25+ seen")
GKE_A4_POOL_MIN = Figure(12.0, "min", "A", "GPU pools 9-10 min, one 35-min outlier (NVIDIA/aicr#2065)")
HF_MB_PER_S = Figure(320.0, "MB/s", "D", "~40 MB/s per file (huggingface/huggingface_hub#2658) x 8 workers")
REGISTRY_NEAR_MB_PER_S = Figure(150.0, "MB/s", "A", "Artifact Registry remote or a VPC registry endpoint")
# The model import workers (components/alibaba/model_import_workers.py): small ECS instances in the VPC that
# start with the network, not the cluster.
WORKER_BOOT_MIN = Figure(2.0, "min", "D", "RunInstances 75 s + first boot 45 s (time-to-ready.md ecs_create, ecs_boot)")
WORKER_SETUP_MIN = Figure(1.5, "min", "A", "apt python3-pip + pinned pip packages from the internal mirrors")
# ModelScope serves files from OSS over the region's internal network where it keeps a copy: modelscope-hub 0.5.1
# modelscope_hub/_download.py sends `x-aliyun-region-id` (detected from ECS metadata) and is redirected to
# modelhub-<region>.oss-<region>-internal.aliyuncs.com; the regions per ModelScope's docs "Alibaba Cloud Intranet
# Acceleration" (cloud-accelerator_EN.md). There the bytes bypass the NAT; no throughput is published.
INTRA_CLOUD_REGIONS = ("cn-hangzhou", "cn-zhangjiakou", "cn-wulanchabu")
INTRA_CLOUD_MB_PER_S = Figure(
    100.0, "MB/s", "A", "per worker, ModelScope from OSS on the internal network; no published rate (as 'modelscope')"
)
CHECK_MIN = Figure(0.2, "min", "A", "hub listing, one OSS HEAD per file and the manifest (weights already present)")
# How much of a model one worker takes by default: about 7 minutes at the assumed 100 MB/s.
WORKER_SHARE_GB = Figure(40.0, "GB", "A", "a default share per worker, ~7 min at the assumed rate")
# At most this many workers: OSS takes 20 Gbit/s of intranet upload per account in cn-hangzhou (time-to-ready.md
# 'oss_limit', alibabacloud.com/help/en/oss/user-guide/limits), i.e. 20 workers at the assumed 100 MB/s each.
MAX_IMPORT_WORKERS = 20


@dataclass(frozen=True)
class Step:
    name: str
    minutes: float
    source: str


@dataclass(frozen=True)
class Plan:
    """What a deadline covers, step by step."""

    steps: tuple[Step, ...]

    @property
    def minutes(self) -> float:
        return sum(s.minutes for s in self.steps)

    def deadline(self, margin: float, floor_minutes: int = 0) -> int:
        """Whole minutes to wait: the plan times `margin` (for what the figures miss), at least the floor."""
        return max(floor_minutes, math.ceil(self.minutes * margin))

    def describe(self) -> str:
        return "; ".join(f"{s.name} {s.minutes:.1f} min" for s in self.steps)


def transfer_minutes(gigabytes: float, mbps: float, cap_mb_per_s: float = math.inf) -> float:
    """Minutes to move `gigabytes` (decimal GB) over a link of `mbps` Mbit/s, no faster than `cap_mb_per_s`."""
    if mbps <= 0:
        raise ValueError(f"bandwidth must be positive, got {mbps} Mbit/s")
    rate = min(mbps / 8, cap_mb_per_s)  # MB/s
    return gigabytes * 1000 / rate / 60


def weights_gb(model: ModelSpec) -> float:
    return model.weights_gib * GB_PER_GIB


def image_pull(mbps: float, pods_sharing: int = 1, image_gb: Figure = ENGINE_IMAGE_GB) -> Step:
    """Pulling the engine image through the link, `pods_sharing` pods at once, then unpacking it."""
    pull = transfer_minutes(image_gb.value * pods_sharing, mbps)
    unpack = ENGINE_IMAGE_UNPACKED_GB.value * 1000 / EXTRACT_MB_PER_S.value / 60 if image_gb is ENGINE_IMAGE_GB else 0
    return Step(
        f"image pull x{pods_sharing} at {mbps:g} Mbit/s",
        pull + unpack,
        f"{image_gb.source}; {EXTRACT_MB_PER_S.source}",
    )


def engine_load(model: ModelSpec) -> Step:
    return Step(
        "engine start, load and warm-up",
        sizing.load_minutes(model),
        "core.sizing.load_minutes (assumed 20 GiB/min + 5 min warm-up)",
    )


def ecs_readiness(model: ModelSpec, mbps: float) -> Plan:
    """A fresh GPU host to an answering API: the download and the image pull share the host's link, while the
    driver, Docker and the toolkit install beside them (components/scripts/bootstrap.sh)."""
    shared = transfer_minutes(weights_gb(model) + ENGINE_IMAGE_GB.value, mbps, MODELSCOPE_MB_PER_S.value)
    unpack = ENGINE_IMAGE_UNPACKED_GB.value * 1000 / EXTRACT_MB_PER_S.value / 60
    return Plan(
        (
            Step("create and boot", ECS_CREATE_AND_BOOT_MIN.value, ECS_CREATE_AND_BOOT_MIN.source),
            Step("apt", APT_BASE_MIN.value, APT_BASE_MIN.source),
            Step(
                f"weights + engine image at {mbps:g} Mbit/s (driver, Docker, toolkit alongside)",
                max(shared + unpack, HOST_SOFTWARE_MIN.value),
                f"{ENGINE_IMAGE_GB.source}; {MODELSCOPE_MB_PER_S.source}; {HOST_SOFTWARE_MIN.source}",
            ),
            engine_load(model),
            Step("readiness polling", POLL_MIN.value, POLL_MIN.source),
        )
    )


def model_import(model: ModelSpec, mbps: float, image_gb: Figure = SLIM_IMAGE_GB) -> Plan:
    """The import Job: its pod, its image, the downloader, then the weights from ModelScope into OSS (ossfs)."""
    cap = min(MODELSCOPE_MB_PER_S.value, OSSFS_WRITE_MB_PER_S.value)
    return Plan(
        (
            Step("import pod", POD_START_MIN.value, POD_START_MIN.source),
            image_pull(mbps, 1, image_gb),
            Step("downloader", PIP_INSTALL_MIN.value, PIP_INSTALL_MIN.source),
            Step(
                f"weights at {mbps:g} Mbit/s into OSS",
                transfer_minutes(weights_gb(model), mbps, cap),
                f"{MODELSCOPE_MB_PER_S.source}; {OSSFS_WRITE_MB_PER_S.source}",
            ),
        )
    )


def pod_start(mbps: float, pods_sharing: int, capacity_minutes: float) -> Plan:
    """A serving pod (group) until its engine process starts: GPU capacity, then the engine image."""
    return Plan(
        (
            Step("GPU capacity", capacity_minutes, GPU_CAPACITY_MIN.source),
            image_pull(mbps, pods_sharing),
        )
    )


def fits(plan: Plan, deadline_minutes: float) -> bool:
    return plan.minutes <= deadline_minutes


def import_workers(model: ModelSpec, configured: int | None = None) -> int:
    """Workers for a model: the configured count, or one per WORKER_SHARE_GB of weights (at most the bound)."""
    if configured:
        return configured
    return max(1, min(MAX_IMPORT_WORKERS, math.ceil(weights_gb(model) / WORKER_SHARE_GB.value)))


def intra_cloud(region: str) -> bool:
    return region in INTRA_CLOUD_REGIONS


def worker_import(model: ModelSpec, mbps: float, workers: int, region: str, present: bool = False) -> Plan:
    """One import worker (they run side by side, each with an equal share): its instance, its set-up, then its
    share from ModelScope into OSS. In INTRA_CLOUD_REGIONS the download bypasses the NAT; elsewhere the workers
    share the NAT's bandwidth. `present`: the weights are in the bucket already, the worker only checks them."""
    steps = [
        Step("worker instance", WORKER_BOOT_MIN.value, WORKER_BOOT_MIN.source),
        Step("worker set-up", WORKER_SETUP_MIN.value, WORKER_SETUP_MIN.source),
    ]
    if present:
        return Plan((*steps, Step("check the weights", CHECK_MIN.value, CHECK_MIN.source)))
    share = weights_gb(model) / workers  # the partition balances bytes; the largest file bounds the imbalance
    if intra_cloud(region):
        rate, why = INTRA_CLOUD_MB_PER_S.value, f"internal network ({INTRA_CLOUD_MB_PER_S.source})"
    else:
        rate = min(MODELSCOPE_MB_PER_S.value, mbps / 8 / workers)
        why = f"{workers} worker(s) share {mbps:g} Mbit/s of NAT; {MODELSCOPE_MB_PER_S.source}"
    steps.append(Step(f"{share:.0f} GB into OSS at {rate:.0f} MB/s", share * 1000 / rate / 60, why))
    return Plan(tuple(steps))


def worker_deadline_minutes(model: ModelSpec, mbps: float, workers: int, margin: float, floor: int) -> int:
    """How long a worker's command may run: the NAT-bound import (what happens if the internal path is not
    taken) times the margin, at least the floor; never below the modelled import on the internal path."""
    nat_bound = worker_import(model, mbps, workers, region="")
    return nat_bound.deadline(margin, floor)
