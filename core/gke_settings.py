"""Settings of the `gke` target: project, zone, A4 node pool, reservation, release channel, HF token.

core.settings.parse() calls parse_gke() with its reader, so gke problems are reported together with
every other problem, before any resource exists. The reader is passed in (not imported) to keep this
module free of a circular import: it only needs `get(name)` and `problem(key, value, allowed, fix)`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Protocol

from core.catalog import ModelSpec

PROJECT_KEY_PREFIX = "llm"

# A4 High: one machine shape, 8 x B200 (GoogleCloudPlatform/cluster-toolkit examples/gke-a4).
A4_MACHINE_TYPE = "a4-highgpu-8g"
A4_ACCELERATOR = "nvidia-b200"
A4_GPU_KIND = "B200"
A4_GPUS = 8
# GKE supports A4 from this version (reference.md section 3).
A4_MIN_VERSION = "1.32.4-gke.1236000"

RESERVATION_MODES = ("none", "any", "specific")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE")
# bucket: imported once into GCS, read through GCS FUSE; download: the engine downloads from Hugging
# Face into the node's local SSD at every start (reference 004's behaviour).
MODEL_SOURCES = ("bucket", "download")

GCP_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
RESERVATION_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
HF_TOKEN = re.compile(r"^hf_[A-Za-z0-9]{20,}$")

# Address plan of the VPC the stack creates (nothing else lives in it).
NODE_CIDR = "10.0.0.0/20"
POD_CIDR = "10.4.0.0/14"
SERVICE_CIDR = "10.8.0.0/20"


class Reader(Protocol):
    def get(self, name: str): ...

    def problem(self, key: str, value: object, allowed: str, fix: str) -> None: ...


@dataclass(frozen=True)
class Reservation:
    """How the A4 nodes consume reserved capacity: none, any matching reservation, or one by name."""

    mode: str  # none | any | specific
    name: Optional[str] = None  # specific only

    @property
    def consume_type(self) -> str:
        return {"none": "NO_RESERVATION", "any": "ANY_RESERVATION", "specific": "SPECIFIC_RESERVATION"}[self.mode]


@dataclass(frozen=True)
class GkeSettings:
    project: str
    region: str
    zone: str  # the A4 node pool's zone (where the capacity or reservation is)
    node_count: int  # A4 nodes (8 GPUs each)
    reservation: Reservation
    release_channel: str
    hf_token: Optional[object]  # core.settings.SecretStr; None: anonymous downloads (public models)
    model_source: str = "bucket"  # one of MODEL_SOURCES
    rdma: bool = False  # RoCE networking: gVNIC + RDMA VPCs, multi-networking, the gIB NCCL plugin
    control_plane_cidrs: tuple[str, ...] = ()  # master authorized networks; empty: not restricted
    node_cidr: str = NODE_CIDR
    pod_cidr: str = POD_CIDR
    service_cidr: str = SERVICE_CIDR

    @property
    def workload_pool(self) -> str:
        return f"{self.project}.svc.id.goog"


def parse_gke(r: Reader, model: Optional[ModelSpec], placement) -> GkeSettings:
    """Validate the gke keys and the A4 shape of the placement (a core.settings.Placement or None)."""
    from core.settings import SecretStr, parse_cidrs  # core.settings imports this module
    prefix = PROJECT_KEY_PREFIX
    gpus_per_pod = placement.gpus_per_pod if placement is not None else None
    pods = placement.pods if placement is not None else None
    replicas = max(1, r.get("replicas"))
    hf_token = SecretStr(r.get("hfToken")) if r.get("hfToken") else None
    project = r.get("gcpProject")
    if not project:
        r.problem("gcpProject", "", "is required for target gke", f"pulumi config set {prefix}:gcpProject <project id>")
    elif not GCP_PROJECT.match(project):
        r.problem("gcpProject", project, "must be a project id: 6-30 lowercase letters, digits and '-'",
                  f"pulumi config set {prefix}:gcpProject my-project (gcloud projects list)")
    region, zone = r.get("region"), r.get("zone")
    if not GCP_REGION.match(region):
        r.problem("region", region, "gke needs a Google Cloud region like us-central1",
                  f"pulumi config set {prefix}:region us-central1")
    if not zone or not zone.startswith(f"{region}-"):
        r.problem("zone", zone, f"gke needs the A4 zone, inside llm:region {region}",
                  f"pulumi config set {prefix}:zone {region}-b (a zone with A4 capacity or your reservation)")
    if r.get("gpuKind") != A4_GPU_KIND:
        r.problem("gpuKind", r.get("gpuKind"), f"gke runs on {A4_MACHINE_TYPE}: {A4_GPUS}x {A4_GPU_KIND}",
                  f"pulumi config set {prefix}:gpuKind {A4_GPU_KIND}")
    if gpus_per_pod is not None and gpus_per_pod != A4_GPUS:
        # One serving pod takes the whole node: tensor parallel over its 8 GPUs, as the reference does.
        r.problem("gpuCount", gpus_per_pod, f"gke serves with tensor parallel {A4_GPUS}, one pod per "
                  f"{A4_MACHINE_TYPE} node with its {A4_GPUS} GPUs", f"pulumi config set {prefix}:gpuCount {A4_GPUS}")
    rdma = bool(r.get("gkeRdma"))
    if pods is not None and pods > 1 and not rdma:
        # NCCL between nodes without the RoCE NICs and the gIB plugin fails ("gIB network not found").
        r.problem("podsPerReplica", pods, "a copy over several A4 nodes needs RDMA networking",
                  f"pulumi config set {prefix}:gkeRdma true (or pulumi config set {prefix}:podsPerReplica 1)")
    node_count = r.get("gkeNodeCount")
    needed = replicas * (pods or 1)
    if node_count < needed:
        r.problem("gkeNodeCount", node_count, f"must be at least {needed}: one A4 node per serving pod",
                  f"pulumi config set {prefix}:gkeNodeCount {needed}")
    reservation = _reservation(r)
    channel = r.get("gkeReleaseChannel")
    if channel not in RELEASE_CHANNELS:
        r.problem("gkeReleaseChannel", channel, f"must be one of {', '.join(RELEASE_CHANNELS)}",
                  f"pulumi config set {prefix}:gkeReleaseChannel REGULAR")
    if hf_token is not None and not HF_TOKEN.match(hf_token.reveal()):
        r.problem("hfToken", "****", "must be a Hugging Face access token (hf_...)",
                  f"pulumi config set --secret {prefix}:hfToken <token from huggingface.co/settings/tokens>")
    if model is not None and model.gated and hf_token is None:
        r.problem("hfToken", "", f"{model.name} is gated on Hugging Face: the download needs a token with access",
                  f"accept the model's terms on huggingface.co, then pulumi config set --secret {prefix}:hfToken <token>")
    model_source = r.get("gkeModelSource")
    if model_source not in MODEL_SOURCES:
        r.problem("gkeModelSource", model_source, f"must be one of {', '.join(MODEL_SOURCES)}",
                  f"pulumi config set {prefix}:gkeModelSource bucket")
    elif model_source == "download" and pods is not None and pods > 1:
        r.problem("gkeModelSource", model_source, f"downloads on every node of a copy; a copy over {pods} nodes "
                  "reads the weights from the bucket", f"pulumi config set {prefix}:gkeModelSource bucket")
    return GkeSettings(project=project, region=region, zone=zone, node_count=node_count, reservation=reservation,
                       release_channel=channel, hf_token=hf_token, model_source=model_source,
                       rdma=rdma, control_plane_cidrs=tuple(parse_cidrs(r, "gkeControlPlaneCidrs")))


def _reservation(r: Reader) -> Reservation:
    prefix = PROJECT_KEY_PREFIX
    mode, name = r.get("gkeReservation"), r.get("gkeReservationName")
    if mode not in RESERVATION_MODES:
        r.problem("gkeReservation", mode, f"unknown reservation mode; allowed: {', '.join(RESERVATION_MODES)}",
                  f"pulumi config set {prefix}:gkeReservation none")
        return Reservation("none")
    if mode == "specific" and not RESERVATION_NAME.match(name or ""):
        r.problem("gkeReservationName", name, "must name the reservation (a lowercase resource name) when "
                  "gkeReservation is specific", f"pulumi config set {prefix}:gkeReservationName <reservation>")
    if mode != "specific" and name:
        r.problem("gkeReservationName", name, "is only used when gkeReservation is specific",
                  f"pulumi config set {prefix}:gkeReservation specific, or unset {prefix}:gkeReservationName")
    return Reservation(mode, name if mode == "specific" else None)


def version_key(version: str) -> tuple[int, ...]:
    """1.32.4-gke.1236000 -> (1, 32, 4, 1236000), for comparing GKE versions."""
    numbers = re.findall(r"\d+", version)
    return tuple(int(n) for n in numbers[:4]) + (0,) * (4 - len(numbers[:4]))


def supports_a4(version: str) -> bool:
    return version_key(version) >= version_key(A4_MIN_VERSION)
