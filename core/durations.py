"""How long the slow steps take, from the bandwidth a stack is configured with: one model for every deadline.

Weights and images reach an Alibaba VPC through its NAT gateway, whose throughput is its EIP's bandwidth
(inbound equals outbound above 10 Mbit/s). Every readiness timeout and Job deadline of the Alibaba targets
is derived here from `network.natBandwidthMbps` (or the ECS host's own public bandwidth), so raising the
bandwidth shortens them and lowering it lengthens them, instead of several constants each assuming a rate.

A plan is a list of steps, each with its minutes and where the figure comes from; a deadline is the plan's
total times a margin, never below a floor. Figures are marked S (sourced), D (derived from sourced figures)
or A (assumed: nothing better was found offline); each figure below says which.
Nothing here was measured on Alibaba Cloud.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from core.catalog import ModelSpec
from core.engine import LOAD_TIME_LOG_LINE, STREAM_TIME_LOG_LINE, WARMUP_TIME_LOG_LINE
from core.nat_egress import download_mbps

GB_PER_GIB = 1.073741824


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    kind: str  # S sourced, D derived, A assumed
    source: str
    # Where a real `pulumi up` shows what this figure stands for, so a run on a cloud can replace an assumption with
    # a measurement. Every assumed figure on the critical path of a goal the model misses says it (tests/test_docs.py;
    # docs/reference/ready-time.md lists them).
    measure: str = ""


# How a run shows its times (the `measure` of the figures below). The Pulled event's text is the kubelet's
# (kubernetes pkg/kubelet/images/image_manager.go, EnsureImageExists); the engine's lines are core.engine's.
PULUMI_TIME = "the resource's `created (Ns)` in `pulumi up`'s output (pulumi/pulumi#10953)"
KUBELET_PULLED = (
    "the kubelet's Pulled event, 'Successfully pulled image ... in T (... including waiting). Image size: N bytes.' "
    "(`kubectl get events -n <namespace> --field-selector reason=Pulled`)"
)
ENGINE_LOG = "the engine's log (`kubectl logs`, or `docker logs llm-serving` on ecs)"
BOOTSTRAP_LOG = "the host's /var/log/llm-serving-bootstrap.log, which times each step"


# --- Figures ------------------------------------------------------------------------------------------------
ENGINE_IMAGE_GB = Figure(12.0, "GB compressed", "S", "vllm-project/vllm#27154 ('around 12 GB'); EGS assumed alike")
ENGINE_IMAGE_UNPACKED_GB = Figure(28.6, "GB", "S", "vllm-project/vllm#22377 (28.6 GB unpacked); EGS assumed alike")
SLIM_IMAGE_GB = Figure(0.5, "GB compressed", "A", "a Python base image; not measured")
EXTRACT_MB_PER_S = Figure(
    250.0,
    "MB/s",
    "A",
    "layer extraction on ESSD; time-to-ready.md 'extract'",
    measure=f"{KUBELET_PULLED}: T less the download at the link's rate",
)
MODELSCOPE_MB_PER_S = Figure(
    100.0,
    "MB/s",
    "A",
    "no published ModelScope throughput; time-to-ready.md 'modelscope'",
    measure=f"{BOOTSTRAP_LOG}: from 'weights: downloading' to 'weights: complete'",
)
OSSFS_WRITE_MB_PER_S = Figure(
    118.0, "MB/s", "S", "ossfs 1.0 write, alibabacloud.com/help/en/oss/developer-reference/ossfs2-0-client-stress-test"
)
ECS_CREATE_AND_BOOT_MIN = Figure(2.3, "min", "D", "network 8 s, RunInstances 75 s, boot 45 s (time-to-ready.md)")
APT_BASE_MIN = Figure(1.0, "min", "A", "apt-get update and base packages from the internal mirror")
HOST_SOFTWARE_MIN = Figure(4.0, "min", "D", "driver 170 s (DKMS 80-150 s, Azure/AgentBaker#8661), Docker, toolkit")
DRIVER_MIN = Figure(
    170 / 60, "min", "D", "DKMS compile 80-150 s (Azure/AgentBaker#8661), initramfs 10-30 s (aks-gpu#161)"
)
DOCKER_MIN = Figure(0.5, "min", "A", "docker.io from the internal mirror (time-to-ready.md 'docker')")
TOOLKIT_MIN = Figure(40 / 60, "min", "A", "nvidia-container-toolkit and its repository (time-to-ready.md 'toolkit')")
RUNTIME_RESTART_MIN = Figure(
    0.1, "min", "A", "nvidia-ctk runtime configure and a Docker restart with no container running; not measured"
)
POD_START_MIN = Figure(0.5, "min", "A", "a CPU pod scheduled and started (ACS: acs_cpu_pod)")
GPU_CAPACITY_MIN = Figure(
    2.0,
    "min",
    "A",
    "an ACS GPU pod's capacity (acs_gpu_pod); an existing node: 0",
    measure="a serving pod's creation to its Pulling event (`kubectl get events -n <namespace>`)",
)
PIP_INSTALL_MIN = Figure(0.5, "min", "A", "the downloader from the internal PyPI mirror")
# ready.sh checks every 2 s (about 1 s late on average, twice: the bootstrap, then /health); Pulumi learns the
# invocation's Success from the provider's poll, which backs off from 3 s to at most 10 s (terraform-provider-alicloud
# resource_alicloud_ecs_invocation.go BuildStateConf, MinTimeout 3 s; terraform-plugin-sdk StateChangeConf caps the
# wait at 10 s): about 5 s late on average.
POLL_MIN = Figure(0.15, "min", "D", "ready.sh checks every 2 s; the provider polls the invocation every 3-10 s")
NETWORK_MIN = Figure(0.4, "min", "S", "VPC and vSwitch 'Creation complete after 7s/8s' (time-to-ready.md 'vpc')")
NAT_MIN = Figure(1.2, "min", "A", "NAT gateway, EIP and SNAT entry (time-to-ready.md 'nat')")
ACS_CLUSTER_MIN = Figure(
    8.0,
    "min",
    "A",
    "anchor: 'about 15 minutes' for ACK, terraform-provider-alicloud docs",
    measure=f"the ACS cluster (alicloud:cs:ManagedKubernetes): {PULUMI_TIME}",
)
ACK_CLUSTER_MIN = Figure(
    10.0,
    "min",
    "A",
    "anchor: 'about 15 minutes', terraform-provider-alicloud cs_managed_kubernetes",
    measure=f"the ACK cluster (alicloud:cs:ManagedKubernetes): {PULUMI_TIME}",
)
CPU_POOL_MIN = Figure(5.0, "min", "A", "a CPU node pool's nodes ready (time-to-ready.md 'pool_cpu')")
GPU_POOL_MIN = Figure(
    8.0,
    "min",
    "A",
    "GKE GPU node 9 min (codalab-worksheets#4042); time-to-ready.md 'pool_gpu'",
    measure=f"the GPU pool (alicloud:cs:NodePool): {PULUMI_TIME}; its nodes' creationTimestamp "
    "(`kubectl get nodes -l llm-serving/pool=gpu`) shows how early the pre-pull began",
)
LB_ALIBABA_MIN = Figure(0.75, "min", "A", "a CLB/NLB for a LoadBalancer Service (time-to-ready.md 'lb_ali')")
LB_GCP_MIN = Figure(1.5, "min", "A", "an internal passthrough LB for a Service (time-to-ready.md 'lb_gcp')")
GCP_APIS_MIN = Figure(1.7, "min", "D", "service enablement 1 min + VPC 22 s (time-to-ready.md 'gcp_api', 'gcp_vpc')")
GKE_CLUSTER_MIN = Figure(9.0, "min", "A", "zonal cluster ~6 min (astronomer/astro-sdk benchmark terraform), 25+ seen")
GKE_A4_POOL_MIN = Figure(12.0, "min", "A", "GPU pools 9-10 min, one 35-min outlier (NVIDIA/aicr#2065)")
CLUSTER_EGRESS_MBPS = Figure(100.0, "Mbit/s", "A", "an existing cluster's egress (kubernetes): not known here")
HF_MB_PER_S = Figure(320.0, "MB/s", "D", "~40 MB/s per file (huggingface/huggingface_hub#2658) x 8 workers")
REGISTRY_NEAR_MB_PER_S = Figure(
    150.0,
    "MB/s",
    "A",
    "Artifact Registry remote or a VPC registry endpoint",
    measure=f"{KUBELET_PULLED} for an image from the VPC endpoint: N over T",
)
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
    100.0,
    "MB/s",
    "A",
    "per worker, ModelScope from OSS on the internal network; no published rate (as 'modelscope')",
    measure=f"{BOOTSTRAP_LOG}: from 'weights: downloading' to 'weights: complete'; each import worker's "
    "output, which the modelImportProgress output's command shows",
)
CHECK_MIN = Figure(0.2, "min", "A", "hub listing, one OSS HEAD per file and the manifest (weights already present)")
# How much of a model one worker takes by default: about 7 minutes at the assumed 100 MB/s.
# Sized so that a worker's start and share (3.5 + ~4 min at the assumed rate) end before the quickest cluster, ACS's
# modelled 8 minutes, is ready: the import then stays off the serving path (a 32B model: 3 workers).
WORKER_SHARE_GB = Figure(25.0, "GB", "A", "a default share per worker, ~4 min at the assumed rate")
# At most this many workers: OSS takes 20 Gbit/s of intranet upload per account in cn-hangzhou (time-to-ready.md
# 'oss_limit', alibabacloud.com/help/en/oss/user-guide/limits), i.e. 20 workers at the assumed 100 MB/s each.
MAX_IMPORT_WORKERS = 20
# ESSD PL1 (the hosts' default category): throughput min(120 + 0.5 x GiB, 350) MB/s, what a copy onto the system
# disk is bounded by (alibabacloud.com/help/en/elastic-compute-service/latest/essd-autopl; time-to-ready.md 'essd').
ESSD_BASE_MB_PER_S = Figure(120.0, "MB/s", "S", "ESSD PL1 120 + 0.5 MB/s per GiB, at most 350 (ECS 'ESSDs' page)")
ESSD_MB_PER_S_PER_GIB = Figure(0.5, "MB/s per GiB", "S", "ESSD PL1 throughput per GiB of capacity (ECS 'ESSDs' page)")
ESSD_MAX_MB_PER_S = Figure(350.0, "MB/s", "S", "ESSD PL1 maximum throughput per disk (ECS 'ESSDs' page)")
# A GPU instance's NIC reading OSS over the internal endpoint; the disk is slower, so it rarely binds.
NIC_MB_PER_S = Figure(
    2000.0,
    "MB/s",
    "A",
    "16 Gbit/s instance NIC, not looked up (time-to-ready.md 'nic_16g')",
    measure=f"{ENGINE_LOG}: '{STREAM_TIME_LOG_LINE} ...: Ns, R/s' of a streamed load",
)
OSS_PARALLEL_STREAMS = Figure(
    16.0, "streams", "A", "ranged GETs in flight (ecs.weights.parallel default); OSS allows 100 Gbit/s per account"
)
# Connections a transfer keeps open at once. Through a NAT of more than 200 Mbit/s each connection takes one of its
# EIPs (core/nat_egress.py): a transfer gets no more than its connections' EIPs carry. At 200 Mbit/s or less (one
# EIP, the default) they change nothing.
PULL_CONNECTIONS = Figure(
    3.0, "layers", "S", "a pull's layers at once: containerd CRI max_concurrent_downloads and Docker's default, 3"
)
HOST_PULL_CONNECTIONS = Figure(8.0, "layers", "S", "bootstrap.sh sets Docker's max-concurrent-downloads to 8")
MIRROR_CONNECTIONS = Figure(6.0, "layers", "S", "skopeo: containers/image copy maxParallelDownloads = 6")
HUB_CONNECTIONS = Figure(8.0, "files", "S", "fetch-model.sh: snapshot_download(max_workers=8)")
WORKER_CONNECTIONS = Figure(4.0, "files", "S", "llm-model-import.py PARALLEL_FILES = 4 per import worker")
# The prepared image build (ECS Image Builder): its intermediate instance, the installs, the pulls, the snapshot.
IMAGE_BUILDER_START_MIN = Figure(2.0, "min", "A", "Image Builder's intermediate instance created and booted")
IMAGE_SNAPSHOT_MIN = Figure(10.0, "min", "A", "CreateImage from the intermediate instance's ~45 GB disk; not measured")
PREPARED_IMAGE_GB = Figure(
    45.0, "GB", "D", "Ubuntu 22.04 ~4 GB + driver and toolkit ~2 GB + engine image unpacked 28.6 (vllm#22377) + Docker"
)
# Fluid's cache on acs (acs.fluid, components/alibaba/fluid_cache.py): Alibaba's ack-fluid chart once the cluster
# exists, the JindoRuntime's master and workers, then the DataLoad fills the workers' memory from OSS once the import
# is done. With the whole model cached (the program sizes the cache so, core.sizing.fluid_cache_gib), Compute Nest's
# ACS deployment guide reports the load in half the time ("根据缓存大小，模型加载速度可以缩短至50%", its Fluid section).
FLUID_INSTALL_MIN = Figure(1.5, "min", "A", "the ack-fluid Helm release and its controllers (time-to-ready.md 'helm')")
FLUID_WORKERS_MIN = Figure(1.0, "min", "A", "the JindoRuntime's ACS CPU pods started, images from the VPC registry")
FLUID_FILL_MB_PER_S_PER_WORKER = Figure(
    500.0, "MB/s per worker", "A", "DataLoad from OSS into memory (time-to-ready.md 'dataload': 3 GB/s over 6 workers)"
)
FLUID_WARM_SPEEDUP = Figure(
    2.0, "x", "S", "a warm Fluid cache halves the load: Compute Nest 'LLM inference (ACS edition)', Fluid section"
)
# The load step (modelStore.load, docs/loading.md). Mount: the default loader through the mounted store, at
# LOAD_MOUNT_GIB_PER_MIN, an assumed 20 GiB/min (GCS FUSE with its file cache is modelled at 1 GB/s in time-to-ready.md,
# 'gcsfuse' A; ossfs 1.0 at 0.3 GB/s, 'ossfs1' D: the program's one figure is kept for both). Stream: the Run:ai
# Model Streamer from gs://, each rank at the rate measured per rank, the ranks of a distributed load together.
STREAM_GCS_GB_PER_S_PER_RANK = Figure(
    0.622, "GB/s per rank", "S", "593 MiB/s per rank streaming from gs://, sgl-project/sglang#22749 ('runai_gcs')"
)
# From OSS through its S3 API (acs, ack): the streamer's own S3 benchmark reaches 3.51 GiB/s
# (run-ai/runai-model-streamer/docs/src/benchmarks.md; time-to-ready.md 'runai_s3'), and a pod reads no faster than
# its instance's NIC (NIC_MB_PER_S, assumed): the ranks' sum is bounded by it. Not measured against OSS.
STREAM_OSS_GB_PER_S_PER_RANK = Figure(
    3.51 * GB_PER_GIB, "GB/s per rank", "S", "S3 3.51 GiB/s, runai-model-streamer benchmarks.md ('runai_s3')"
)
ENGINE_START_MIN = Figure(0.5, "min", "S", "~30 s unlogged before the load, vllm-project/vllm#20264 ('eng_start')")
# The mount load: the default loader reading the weights through the mounted store (or the host's disk).
LOAD_MOUNT_GIB_PER_MIN = Figure(
    20.0,
    "GiB/min",
    "A",
    "the program's read rate through a mount (~360 MB/s)",
    measure=f"{ENGINE_LOG}: '{LOAD_TIME_LOG_LINE} N seconds' (the weights' GiB over N)",
)
# The warm-up once the weights are in GPU memory: vLLM's "init engine (profile, create kv cache, warmup model)", i.e.
# torch.compile, CUDA graph capture and, for FP8 checkpoints, DeepGEMM's JIT kernels; by class (warmup_class).
WARMUP_SMALL_MIN = Figure(
    50 / 60,
    "min",
    "S",
    "torch.compile 19-29 s + CUDA graphs 10-17 s for an 8B model: vllm-project/vllm#11005 (19.37 s, graphs 15 s), "
    "kubernetes-sigs/gateway-api-inference-extension#550 (28.77 s), vllm-project/vllm#20264 (graphs 17 s) "
    "('warm_small')",
)
WARMUP_MID_MIN = Figure(
    90 / 60,
    "min",
    "A",
    "a larger or tensor-parallel model compiles more and captures graphs on every rank; one reported first start: "
    "torch.compile 45.81 s + graphs 37 s, init 90.84 s (run-ai/runai-model-streamer#67) ('warm_mid')",
    measure=f"{ENGINE_LOG}: '{WARMUP_TIME_LOG_LINE} N s'",
)
WARMUP_R1_MIN = Figure(
    260 / 60,
    "min",
    "D",
    "DeepGEMM's FP8 kernels JIT-warmed with an empty cache, fp8_gemm_nt 83 s + grouped MoE 48 s (vllm-project/vllm"
    "#22215, an FP8 MoE), plus compile and graphs of a 61-layer MoE ~130 s ('warm_r1')",
)
# The small class: one GPU and at most this many parameters (the 8B models of the sources above; 7B in the catalog).
WARMUP_SMALL_MAX_BILLION = 14.0
# gke's import (components/gcp/hf_gcs_import.py): Cloud Run job tasks, started once the bucket exists.
CLOUD_RUN_START_MIN = Figure(
    1.0, "min", "A", "a Cloud Run job execution's tasks scheduled, the ~50 MB slim image through the remote repository"
)
IMPORT_TASK_MB_PER_S = Figure(
    250.0,
    "MB/s",
    "A",
    "one 8-vCPU Cloud Run task: hf_xet high-performance download, sha256, parallel upload to GCS; no Cloud Run "
    "bandwidth figure found; half of hf_transfer's 'beyond ~500MB/s' (time-to-ready.md 'hf_best')",
)
# GKE image streaming (components/gcp/gpu_node_pool.py): "During the first pull of an eligible image, you might not
# notice the benefits of Image streaming. However, after Image streaming caches the image, future image pulls on any
# cluster benefit" (docs.cloud.google.com/kubernetes-engine/docs/how-to/image-streaming). A first deploy pays the
# full pull; later pulls of the same image (a new node, the next stack) start streamed.
IMAGE_STREAMED_MIN = Figure(0.25, "min", "A", "a streamed container start: seconds (GKE image streaming docs)")


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


# Registry hosts reached over the VPC in the region: ACR Personal Edition `registry-vpc.<region>.aliyuncs.com` (an
# instance from before 2024-09-09; newer ones refuse anonymous pulls: core.config.engine.anonymous_pull_problem), an
# ACR Enterprise instance `<instance>-registry-vpc.<region>.cr.aliyuncs.com` (ACR "Configure access over VPCs",
# alibabacloud.com/help/en/acr/user-guide/configure-access-over-vpcs), ACK's `registry-<region>-vpc.ack.aliyuncs.com`
# (alibaba-facts.md claim 33). No VPC host of the EGS registry (egs-registry.cn-hangzhou.cr.aliyuncs.com, the
# mainland default) is known for other accounts (alibaba-facts.md section 12): its pulls go through the NAT.
def pulled_in_region(image: str, region: str) -> bool:
    """Whether `image` comes from a registry's VPC endpoint in `region` (so not through the NAT)."""
    host = image.split("/", 1)[0] if "/" in image else ""
    region = re.escape(region)
    return bool(
        re.fullmatch(rf"registry-vpc\.{region}\.aliyuncs\.com", host)
        or re.fullmatch(rf"[a-z0-9][a-z0-9-]*-registry-vpc\.{region}\.cr\.aliyuncs\.com", host)
        or re.fullmatch(rf"registry-{region}-vpc\.ack\.aliyuncs\.com", host)
    )


def link_label(mbps: float, connections: int) -> str:
    """How a step names its link: the bandwidth, and through a NAT pool what its connections are expected to get."""
    got = download_mbps(mbps, connections)
    return f"{mbps:g} Mbit/s" if got >= mbps else f"{mbps:g} Mbit/s ({got:.0f} expected over {connections} connections)"


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
    connections = pods_sharing * int(PULL_CONNECTIONS.value)
    pull = transfer_minutes(image_gb.value * pods_sharing, download_mbps(mbps, connections))
    unpack = ENGINE_IMAGE_UNPACKED_GB.value * 1000 / EXTRACT_MB_PER_S.value / 60 if image_gb is ENGINE_IMAGE_GB else 0
    return Step(
        f"image pull x{pods_sharing} at {link_label(mbps, connections)}",
        pull + unpack,
        f"{image_gb.source}; {EXTRACT_MB_PER_S.source}",
    )


def host_image_pull_minutes(mbps: float, image_in_region: bool) -> float:
    """An ECS host's Docker (or Image Builder's, with the same bootstrap.sh) pulling the engine image: from a
    registry's VPC endpoint at its rate, else through the link with the layers bootstrap.sh lets Docker fetch at
    once."""
    if image_in_region:
        return ENGINE_IMAGE_GB.value * 1000 / REGISTRY_NEAR_MB_PER_S.value / 60
    return transfer_minutes(ENGINE_IMAGE_GB.value, download_mbps(mbps, int(HOST_PULL_CONNECTIONS.value)))


def engine_image_pull(image: str, region: str, mbps: float, pods: int) -> Step:
    """The serving pods' engine image: `pods` pulls per deploy (every pod of the first rollout pulls it once); through
    the NAT they share its bandwidth, from a VPC endpoint in the region each pulls at the registry's rate."""
    if not pulled_in_region(image, region):
        return image_pull(mbps, pods)
    pull = ENGINE_IMAGE_GB.value * 1000 / REGISTRY_NEAR_MB_PER_S.value / 60
    unpack = ENGINE_IMAGE_UNPACKED_GB.value * 1000 / EXTRACT_MB_PER_S.value / 60
    return Step(
        f"image pull x{pods} from the VPC registry",
        pull + unpack,
        f"{REGISTRY_NEAR_MB_PER_S.source}; {EXTRACT_MB_PER_S.source}",
    )


def warmup_class(model: ModelSpec, tensor_parallel: int = 1) -> str:
    """Which warm-up figure a model gets, from its spec; a custom model follows the same rule. "r1": an FP8 checkpoint
    (vLLM JIT-warms DeepGEMM's FP8 kernels at start, vllm-project/vllm#22215; DeepSeek-V3/R1 in the catalog; for a
    dense FP8 model, which warms fewer kernels, the conservative choice). "mid": more than WARMUP_SMALL_MAX_BILLION
    parameters, or a tensor-parallel engine (a capture on every rank). "small": the rest (one GPU, up to 14B)."""
    if model.weight_dtype == "fp8":
        return "r1"
    if model.params_billion > WARMUP_SMALL_MAX_BILLION or tensor_parallel > 1:
        return "mid"
    return "small"


WARMUPS = {"small": WARMUP_SMALL_MIN, "mid": WARMUP_MID_MIN, "r1": WARMUP_R1_MIN}


def warmup(model: ModelSpec, tensor_parallel: int = 1) -> Step:
    """The warm-up after the load: torch.compile, CUDA graphs, and DeepGEMM for FP8 (warmup_class)."""
    kind = warmup_class(model, tensor_parallel)
    figure = WARMUPS[kind]
    return Step(f"warm-up ({kind})", figure.value, f"{figure.kind}: {figure.source}")


def mount_load_minutes(model: ModelSpec, tensor_parallel: int = 1, speedup: float = 1.0) -> float:
    """From the engine's start to a healthy engine reading through a mount (or the host's disk): engine start, the
    weights at LOAD_MOUNT_GIB_PER_MIN (times `speedup`: a warm Fluid cache), the warm-up."""
    start = ENGINE_START_MIN.value + model.weights_gib / (LOAD_MOUNT_GIB_PER_MIN.value * speedup)
    return start + warmup(model, tensor_parallel).minutes


def load_minutes(model: ModelSpec, tensor_parallel: int = 1) -> int:
    """mount_load_minutes in whole minutes, rounded up: what the serving pods' startup windows and rollout waits are
    sized from, with their margin and floor (components/kubernetes/serving_workload.py)."""
    return math.ceil(mount_load_minutes(model, tensor_parallel))


def fluid_warm_up(model: ModelSpec, workers: int) -> Plan:
    """Fluid's cache filled once the import is done: the runtime's pods, then the DataLoad over its workers."""
    rate = FLUID_FILL_MB_PER_S_PER_WORKER.value * workers
    gb = weights_gb(model)
    return Plan(
        (
            Step("cache workers", FLUID_WORKERS_MIN.value, FLUID_WORKERS_MIN.source),
            Step(
                f"DataLoad of {gb:.0f} GB into {workers} workers' memory",
                gb * 1000 / rate / 60,
                FLUID_FILL_MB_PER_S_PER_WORKER.source,
            ),
        )
    )


def engine_load(
    model: ModelSpec, stream_ranks: int = 0, tensor_parallel: int = 1, store: str = "gs", warm_cache: bool = False
) -> Step:
    """Engine start, the weights into the GPUs, warm-up. stream_ranks > 0: streamed from the object store (`store`:
    "gs", or "oss" bounded by the instance NIC) by that many processes at once (a distributed load: the
    tensor-parallel ranks; otherwise 1), else the mount figure; warm_cache: through a filled Fluid cache, at
    FLUID_WARM_SPEEDUP times the mount figure."""
    warm = warmup(model, tensor_parallel)
    if stream_ranks <= 0:
        read, speedup = LOAD_MOUNT_GIB_PER_MIN.source, 1.0
        if warm_cache:
            speedup = FLUID_WARM_SPEEDUP.value
            read += f" x{speedup:g}: {FLUID_WARM_SPEEDUP.source}"
        return Step(
            "engine start, load from the warm cache and warm-up" if warm_cache else "engine start, load and warm-up",
            mount_load_minutes(model, tensor_parallel, speedup),
            f"{ENGINE_START_MIN.source}; {read}; {warm.name} {warm.minutes * 60:.0f} s, {warm.source}",
        )
    if store == "oss":
        rate = min(STREAM_OSS_GB_PER_S_PER_RANK.value * stream_ranks, NIC_MB_PER_S.value / 1000)
        figures = f"{STREAM_OSS_GB_PER_S_PER_RANK.source} x{stream_ranks}, at most {NIC_MB_PER_S.source}"
    else:
        rate = STREAM_GCS_GB_PER_S_PER_RANK.value * stream_ranks
        figures = f"{STREAM_GCS_GB_PER_S_PER_RANK.source} x{stream_ranks}"
    stream = weights_gb(model) / rate / 60
    return Step(
        f"engine start, stream x{stream_ranks} and warm-up",
        ENGINE_START_MIN.value + stream + warm.minutes,
        f"{ENGINE_START_MIN.source}; {figures}; {warm.name} {warm.minutes * 60:.0f} s, {warm.source}",
    )


@dataclass(frozen=True)
class EcsStart:
    """What a host starts from: a prepared image (driver, Docker, toolkit and the engine image already there), the
    weights from an OSS bucket in the region, the engine image from a registry's VPC endpoint."""

    prepared_image: bool = False
    weights_in_region: bool = False
    image_in_region: bool = False
    # ModelScope hands this host its files from OSS over the region's internal network (INTRA_CLOUD_REGIONS: the
    # host's fetch-model.sh runs the same modelscope-hub as the import workers), so they bypass the NAT.
    hub_in_region: bool = False
    disk_gib: int = 100
    parallel: int = int(OSS_PARALLEL_STREAMS.value)
    tensor_parallel: int = 1  # the host's GPUs the engine spans: its warm-up class (warmup_class)
    # ecs.weights.load stream: the engine streams the weights from OSS itself, this many processes at once (the
    # tensor-parallel ranks of a distributed load, else 1); 0: they are on the disk first (a copy or a download).
    stream_ranks: int = 0
    # ecs.weights.source import: when the stack's import workers are modelled to be done, from the start of `up`
    # (import_ready_minutes); the host's copy or stream waits for them. 0: the bucket is filled already.
    import_minutes: float = 0.0
    import_workers: int = 0


def essd_mb_per_s(disk_gib: int) -> float:
    return min(ESSD_BASE_MB_PER_S.value + ESSD_MB_PER_S_PER_GIB.value * disk_gib, ESSD_MAX_MB_PER_S.value)


def ecs_readiness(model: ModelSpec, mbps: float, start: EcsStart = EcsStart()) -> Plan:
    """A GPU host to an answering API (components/scripts/bootstrap.sh): after apt, the weights download runs beside
    the driver, Docker and toolkit installs, which the engine image pull follows. Through the NAT the weights and
    the image share its bandwidth; from OSS's internal endpoint the weights go at the disk's speed, from a VPC
    registry the image at the registry's. A prepared image skips apt, the installs and the image pull. Streamed from
    OSS (start.stream_ranks), nothing is copied: the engine's load reads the bucket at the OSS streaming figure,
    bounded by the NIC (engine_load store "oss")."""
    weights = weights_gb(model)
    unpack = ENGINE_IMAGE_UNPACKED_GB.value * 1000 / EXTRACT_MB_PER_S.value / 60
    apt = 0.0 if start.prepared_image else APT_BASE_MIN.value
    if start.weights_in_region and start.stream_ranks > 0:
        download = Step("weights: streamed from OSS by the engine (no copy)", 0.0, "ecs.weights.load stream")
    elif start.weights_in_region:
        rate = min(essd_mb_per_s(start.disk_gib), NIC_MB_PER_S.value)
        download = Step(
            f"weights from OSS in the region at {rate:.0f} MB/s ({start.parallel} streams)",
            weights * 1000 / rate / 60,
            f"{ESSD_BASE_MB_PER_S.source}; {NIC_MB_PER_S.source}",
        )
    elif start.hub_in_region:
        rate = min(INTRA_CLOUD_MB_PER_S.value, essd_mb_per_s(start.disk_gib))
        download = Step(
            f"weights from ModelScope over the region's internal network at {rate:.0f} MB/s",
            weights * 1000 / rate / 60,
            f"{INTRA_CLOUD_MB_PER_S.source}; {ESSD_BASE_MB_PER_S.source}",
        )
    else:
        # Through the NAT, beside the image if it comes the same way (both then finish by the shared total).
        shared = 0.0 if start.prepared_image or start.image_in_region else ENGINE_IMAGE_GB.value
        connections = int(HUB_CONNECTIONS.value + (HOST_PULL_CONNECTIONS.value if shared else 0))
        download = Step(
            f"weights from ModelScope at {link_label(mbps, connections)}"
            + (" (sharing it with the engine image)" if shared else ""),
            transfer_minutes(weights + shared, download_mbps(mbps, connections), MODELSCOPE_MB_PER_S.value),
            f"{MODELSCOPE_MB_PER_S.source}; {ENGINE_IMAGE_GB.source}",
        )
    if start.prepared_image:
        software = Step("driver, Docker, toolkit, engine image: in the prepared image", 0.0, "ecs.preparedImage")
    else:
        # bootstrap.sh: Docker, then the image pull beside the toolkit's and the driver's installs (one after the
        # other, both use apt); the toolkit becomes Docker's runtime after the pull (a restart).
        pull = host_image_pull_minutes(mbps, start.image_in_region)
        software = Step(
            "Docker, then the engine image"
            + (
                " from the VPC registry"
                if start.image_in_region
                else f" at {link_label(mbps, int(HOST_PULL_CONNECTIONS.value))}"
            )
            + " beside the toolkit and the driver",
            DOCKER_MIN.value + max(pull + unpack, TOOLKIT_MIN.value + DRIVER_MIN.value) + RUNTIME_RESTART_MIN.value,
            f"{DOCKER_MIN.source}; {TOOLKIT_MIN.source}; {DRIVER_MIN.source}; "
            f"{REGISTRY_NEAR_MB_PER_S.source if start.image_in_region else ENGINE_IMAGE_GB.source}; "
            f"{EXTRACT_MB_PER_S.source}; {RUNTIME_RESTART_MIN.source}",
        )
    if start.import_minutes > 0:
        # The host's fetch-oss.py waits for the workers' manifests (it starts after apt, as the copy does).
        wait = max(0.0, start.import_minutes - ECS_CREATE_AND_BOOT_MIN.value - apt)
        download = Step(
            f"the import ({start.import_workers} worker{'s' if start.import_workers != 1 else ''}, done at "
            f"{start.import_minutes:.1f} min), then {download.name}",
            wait + download.minutes,
            f"{WORKER_BOOT_MIN.source}; {WORKER_SETUP_MIN.source}; {INTRA_CLOUD_MB_PER_S.source}; {download.source}",
        )
    slower = max(download, software, key=lambda s: s.minutes)
    other = software if slower is download else download
    return Plan(
        (
            Step("create and boot", ECS_CREATE_AND_BOOT_MIN.value, ECS_CREATE_AND_BOOT_MIN.source),
            Step("apt" if not start.prepared_image else "apt: nothing to install", apt, APT_BASE_MIN.source),
            Step(slower.name, slower.minutes, f"{slower.source}; beside it: {other.name} {other.minutes:.1f} min"),
            engine_load(model, start.stream_ranks, start.tensor_parallel, store="oss")
            if start.weights_in_region and start.stream_ranks > 0
            else engine_load(model, tensor_parallel=start.tensor_parallel),
            Step("readiness polling", POLL_MIN.value, POLL_MIN.source),
        )
    )


def prepared_image_build(mbps: float, image_in_region: bool) -> Plan:
    """ECS Image Builder making the prepared image (components/alibaba/prepared_image.py): off the API's path."""
    pull = host_image_pull_minutes(mbps, image_in_region)
    unpack = ENGINE_IMAGE_UNPACKED_GB.value * 1000 / EXTRACT_MB_PER_S.value / 60
    return Plan(
        (
            Step("intermediate instance", IMAGE_BUILDER_START_MIN.value, IMAGE_BUILDER_START_MIN.source),
            Step(
                "apt, driver, Docker, toolkit", APT_BASE_MIN.value + HOST_SOFTWARE_MIN.value, HOST_SOFTWARE_MIN.source
            ),
            Step("engine and gateway images", pull + unpack, f"{ENGINE_IMAGE_GB.source}; {EXTRACT_MB_PER_S.source}"),
            Step("image snapshot", IMAGE_SNAPSHOT_MIN.value, IMAGE_SNAPSHOT_MIN.source),
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


# gke's import tasks: one per 100 GiB of weights (R1's 642 GiB: 7 tasks, a 7B model: 1), at most 10. A task keeps
# a few files in its 32 GiB of memory at a time, never its share, so the split is for time, not for space: with 7
# tasks the 689 GB take ~7 min at the assumed rate, and ~20 at a third of it, still inside cluster + A4 pool.
IMPORT_GIB_PER_TASK = 100
# The bound of gke.importTasks too. Cloud Run allows far more tasks per job: 10 x 8 vCPU is this program's bound (the
# project's regional Cloud Run CPU quota was not looked up; with less, tasks queue).
MAX_IMPORT_TASKS = 10


def gke_import_tasks(model: ModelSpec, configured: int | None = None) -> int:
    """gke.importTasks if set, else one task per IMPORT_GIB_PER_TASK GiB of weights, 1..MAX_IMPORT_TASKS."""
    if configured is not None:
        return configured
    return max(1, min(MAX_IMPORT_TASKS, math.ceil(model.weights_gib / IMPORT_GIB_PER_TASK)))


def gke_import(model: ModelSpec, workers: int) -> Plan:
    """gke's import: the Cloud Run tasks start, install the downloader, then each copies its share (the largest)."""
    share = weights_gb(model) / workers
    return Plan(
        (
            Step("Cloud Run tasks start", CLOUD_RUN_START_MIN.value, CLOUD_RUN_START_MIN.source),
            Step("downloader", PIP_INSTALL_MIN.value, PIP_INSTALL_MIN.source),
            Step(
                f"{share:.0f} GB per task, {workers} task(s) in parallel",
                share * 1000 / IMPORT_TASK_MB_PER_S.value / 60,
                IMPORT_TASK_MB_PER_S.source,
            ),
        )
    )


def download_at_start(model: ModelSpec) -> Step:
    """gke.modelSource download: the engine downloads the weights from Hugging Face when it starts, no bucket."""
    return Step(
        f"weights from Hugging Face at {HF_MB_PER_S.value:.0f} MB/s",
        weights_gb(model) * 1000 / HF_MB_PER_S.value / 60,
        HF_MB_PER_S.source,
    )


def gke_image_pulls(nodes: int, cached: bool = False) -> Step:
    """The engine image on `nodes` GPU nodes at once, each pulling through the regional remote repository; the
    first pull of an image is a full one (image streaming helps once the image is cached)."""
    if cached:
        return Step(f"engine image: {nodes} streamed pull(s)", IMAGE_STREAMED_MIN.value, IMAGE_STREAMED_MIN.source)
    pull = ENGINE_IMAGE_GB.value * 1000 / REGISTRY_NEAR_MB_PER_S.value / 60
    unpack = ENGINE_IMAGE_UNPACKED_GB.value * 1000 / EXTRACT_MB_PER_S.value / 60
    return Step(
        f"engine image: {nodes} pull(s), one per GPU node, in parallel",
        pull + unpack,
        f"{ENGINE_IMAGE_GB.source}; {REGISTRY_NEAR_MB_PER_S.source}; {EXTRACT_MB_PER_S.source}",
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


def worker_import(
    model: ModelSpec, mbps: float, workers: int, region: str, present: bool = False, other_flows: int = 0
) -> Plan:
    """One import worker (they run side by side, each with an equal share): its instance, its set-up, then its
    share from ModelScope into OSS. In INTRA_CLOUD_REGIONS the download bypasses the NAT; elsewhere the workers
    share the NAT's bandwidth (with `other_flows` more, e.g. the image mirror). `present`: the weights are in the
    bucket already, the worker only checks them."""
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
        flows = workers + other_flows
        rate = min(MODELSCOPE_MB_PER_S.value, download_mbps(mbps, flows * int(WORKER_CONNECTIONS.value)) / 8 / flows)
        why = f"{flows} flow(s) share {mbps:g} Mbit/s of NAT; {MODELSCOPE_MB_PER_S.source}"
    steps.append(Step(f"{share:.0f} GB into OSS at {rate:.0f} MB/s", share * 1000 / rate / 60, why))
    return Plan(tuple(steps))


def ecs_import(model: ModelSpec, mbps: float, workers: int, region: str, start: EcsStart) -> Plan:
    """ecs.weights.source import: one worker's share; outside ModelScope's regions the workers share the NAT with
    the host's engine image pull (unless the host has the image, or takes it from a VPC registry)."""
    return worker_import(model, mbps, workers, region, other_flows=host_nat_pulls(start))


def host_nat_pulls(start: EcsStart) -> int:
    """The host's engine image pulls through the NAT: none from a prepared image or a VPC registry, else one."""
    return 0 if start.prepared_image or start.image_in_region else 1


def import_ready_minutes(plan: Plan) -> float:
    """When import workers that start with the network and its NAT (their SNAT entries: the hub's API is on the
    internet) are done, from the start of `up`."""
    return NETWORK_MIN.value + NAT_MIN.value + plan.minutes


def image_mirror(mbps: float, sharing: int = 1) -> Plan:
    """The image mirror worker (components/alibaba/image_mirror.py): its instance, its set-up, then the engine image
    from the source registry through the NAT, `sharing` flows at once (it and the import workers that use the NAT),
    pushed into the VPC registry as it comes (skopeo copies layer by layer, nothing waits for the whole image)."""
    sharing = max(1, sharing)
    rate = download_mbps(mbps, sharing * int(MIRROR_CONNECTIONS.value)) / sharing
    return Plan(
        (
            Step("worker instance", WORKER_BOOT_MIN.value, WORKER_BOOT_MIN.source),
            Step("worker set-up", WORKER_SETUP_MIN.value, "apt skopeo + python3-pip, pip from the internal mirrors"),
            Step(
                f"engine image copy at {rate:.0f} Mbit/s into the VPC registry",
                transfer_minutes(ENGINE_IMAGE_GB.value, rate),
                f"{ENGINE_IMAGE_GB.source}; {sharing} flow(s) on {mbps:g} Mbit/s of NAT",
            ),
        )
    )


IMPORT_DEADLINE_MARGIN = 2.0  # the download's rate is the softest figure
IMPORT_DEADLINE_FLOOR_MINUTES = 30


def import_deadline_minutes(
    model: ModelSpec, mbps: float, workers: int, modelled: float, cap: int, other_flows: int = 0
) -> int:
    """An import worker's command timeout: the NAT-bound import doubled, at least 30 minutes, never below the
    `modelled` import, at most `cap` (what Cloud Assistant runs a command for)."""
    minutes = worker_deadline_minutes(
        model, mbps, workers, IMPORT_DEADLINE_MARGIN, IMPORT_DEADLINE_FLOOR_MINUTES, other_flows=other_flows
    )
    return max(math.ceil(modelled), min(minutes, cap))


def worker_deadline_minutes(
    model: ModelSpec, mbps: float, workers: int, margin: float, floor: int, other_flows: int = 0
) -> int:
    """How long a worker's command may run: the NAT-bound import (what happens if the internal path is not
    taken) times the margin, at least the floor; never below the modelled import on the internal path."""
    nat_bound = worker_import(model, mbps, workers, region="", other_flows=other_flows)
    return nat_bound.deadline(margin, floor)
