"""`gke`: what only the gke target has: the GPU machine, the reservation, release channel, model source and RDMA.

The project, region and zone are the Google provider's standard keys (gcp:project, gcp:region, gcp:zone),
read with the rest of the provider config. The GPU machines are core.catalog.GKE_MACHINES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator

from core.catalog import GKE_MACHINES, GkeMachine
from core.config.problems import Problems
from core.config.schema import Flag, Group, matches, option, rule
from core.config.secret import SecretStr
from core.targets import GKE

DEFAULT_REGION = "us-central1"  # a region that offers A4 (gpu-recipes' examples)

GCP_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"  # project ids: 6-30 characters (Resource Manager naming rules)
GCP_REGION = r"[a-z]+-[a-z]+[0-9]+"  # us-central1, europe-west4
GCP_ZONE = r"[a-z]+-[a-z]+[0-9]+-[a-z]"  # us-central1-b
RESERVATION_NAME = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
# Address plan of the VPC the stack creates (nothing else lives in it).
NODE_CIDR = "10.0.0.0/20"
POD_CIDR = "10.4.0.0/14"
SERVICE_CIDR = "10.8.0.0/20"


class ReservationConfig(Group):
    TARGETS = (GKE,)
    mode: Literal["none", "any", "specific"] = option("none", "How the A4 nodes consume reserved capacity.")
    name: Optional[Annotated[str, matches(RESERVATION_NAME, "a reservation name (lowercase resource name)")]] = option(
        None, "The reservation, when mode is specific.", example="my-a4-reservation"
    )


def _machine_type(value: str) -> str:
    if value not in GKE_MACHINES:
        raise rule("machine_type", f"must be a GPU machine of the catalog: {', '.join(GKE_MACHINES)}")
    return value


class GkeConfig(Group):
    TARGETS = (GKE,)
    machine_type: Optional[Annotated[str, AfterValidator(_machine_type)]] = option(
        None,
        "GPU machine type of the node pool; empty: the smallest catalog machine that holds the model "
        "(with placement.gpuKind / placement.gpuCount, if set).",
        example="g2-standard-8",
    )
    reservation: ReservationConfig = option(ReservationConfig(), "Reservation affinity of the A4 nodes.")
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = option("REGULAR", "Cluster release channel.")
    model_source: Literal["bucket", "download"] = option(
        "bucket", "bucket: imported once into GCS, read through GCS FUSE; download: vLLM downloads at every start."
    )
    rdma: Flag = option(False, "RDMA (RoCE) networking on the A4 nodes: extra VPCs, multi-networking, gIB.")


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
    zone: str  # the GPU node pool's zone (where the capacity or reservation is)
    machine: GkeMachine  # the GPU nodes' machine (core.config.placement chose or checked it)
    node_count: int  # GPU nodes, one serving pod each
    reservation: Reservation
    release_channel: str
    hf_token: Optional[SecretStr]  # None: anonymous downloads (public models)
    model_source: str = "bucket"
    rdma: bool = False  # RoCE networking: gVNIC + RDMA VPCs, multi-networking, the gIB NCCL plugin
    control_plane_cidrs: tuple[str, ...] = ()  # master authorized networks; empty: not restricted
    node_cidr: str = NODE_CIDR
    pod_cidr: str = POD_CIDR
    service_cidr: str = SERVICE_CIDR

    @property
    def workload_pool(self) -> str:
        return f"{self.project}.svc.id.goog"


def resolve_reservation(config: ReservationConfig, problems: Problems) -> Reservation:
    if config.mode == "specific" and not config.name:
        problems.add(
            "gke.reservation.name",
            None,
            "must name the reservation when gke.reservation.mode is specific",
            problems.set_command("gke.reservation.name", "<reservation>"),
        )
    if config.mode != "specific" and config.name:
        problems.add(
            "gke.reservation.name",
            config.name,
            "is only used when gke.reservation.mode is specific",
            f"{problems.set_command('gke.reservation.mode', 'specific')}, or "
            f"{problems.rm_command('gke.reservation.name')}",
        )
    return Reservation(config.mode, config.name if config.mode == "specific" else None)


def version_key(version: str) -> tuple[int, ...]:
    """1.32.4-gke.1236000 -> (1, 32, 4, 1236000), for comparing GKE versions."""
    numbers = re.findall(r"\d+", version)
    return tuple(int(n) for n in numbers[:4]) + (0,) * (4 - len(numbers[:4]))


def at_least(version: str, minimum: str) -> bool:
    return version_key(version) >= version_key(minimum)
