"""`gke`: what only the gke target has: the GPU machine, the reservation, release channel, model source and RDMA.

The project, region and zone are the Google provider's standard keys (gcp:project, gcp:region, gcp:zone),
read with the rest of the provider config. The GPU machines are core.catalog.GKE_MACHINES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator

from core.catalog import GKE_MACHINES, ON_DEMAND, RESERVATION, GkeMachine
from core.config.problems import Problems
from core.config.schema import Flag, Group, Int, matches, option, rule, within
from core.config.secret import SecretStr
from core.durations import MAX_IMPORT_TASKS
from core.targets import GKE

DEFAULT_REGION = "us-central1"  # a region that offers A4 (gpu-recipes' examples)

GCP_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"  # project ids: 6-30 characters (Resource Manager naming rules)
GCP_REGION = r"[a-z]+-[a-z]+[0-9]+"  # us-central1, europe-west4
GCP_ZONE = r"[a-z]+-[a-z]+[0-9]+-[a-z]"  # us-central1-b
RESOURCE_NAME = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
# A specific reservation as GKE's reservation affinity takes it: a name in the project, a block of it (A4
# reservations come in blocks: gpu-recipes docs/configuring-environment-gke-a4.md uses <name>/reservationBlocks/
# <block>), or the full path, which also names a reservation shared from another project (cluster-toolkit
# modules/compute/gke-node-pool reservation_definitions.tf). Sub-blocks (.../reservationSubBlocks/<sub>) are seen
# only for A4X in Google's examples: not accepted here.
RESERVATION_REF = rf"(projects/{GCP_PROJECT}/reservations/)?{RESOURCE_NAME}(/reservationBlocks/{RESOURCE_NAME})?"
# Flex-start nodes run "for up to seven days" (GKE "About GPU obtainability with flex-start", concepts/dws);
# GKE deletes a node when its max_run_duration ends. No lower bound was found: 1 hour is the provider's example.
MAX_RUN_HOURS = 168
# Flex-start needs GKE 1.32.2-gke.1652000 or later (same page).
FLEX_START_MIN_GKE = "1.32.2-gke.1652000"
# Address plan of the VPC the stack creates (nothing else lives in it).
NODE_CIDR = "10.0.0.0/20"
POD_CIDR = "10.4.0.0/14"
SERVICE_CIDR = "10.8.0.0/20"


class CapacityConfig(Group):
    TARGETS = (GKE,)
    mode: Literal["on-demand", "reservation", "spot", "flex-start"] = option(
        "on-demand",
        "How the GPU nodes get capacity: on-demand (G2), a specific reservation, Spot VMs, or Flex-start "
        "(A3, A4: never on demand; see docs/reference/models.md).",
    )
    reservation: Optional[
        Annotated[
            str,
            matches(
                RESERVATION_REF,
                "a reservation: <name>, <name>/reservationBlocks/<block>, or "
                "projects/<project>/reservations/<name>[/reservationBlocks/<block>]",
            ),
        ]
    ] = option(None, "mode reservation: the specific reservation the nodes consume.", example="my-a4-reservation")
    max_run_hours: Optional[Annotated[Int, within(1, MAX_RUN_HOURS, "hours")]] = option(
        None,
        f"mode flex-start: hours a node runs before GKE deletes it (and a new one is requested); "
        f"empty: {MAX_RUN_HOURS}, the longest.",
        example=24,
    )


class MaintenanceConfig(Group):
    """When GKE may maintain the cluster, and what it must not do on its own (cluster-toolkit examples/gke-a4)."""

    TARGETS = (GKE,)
    window_start: Annotated[str, matches(r"([01][0-9]|2[0-3]):[0-5][0-9]", "a UTC time of day like 09:00")] = option(
        "09:00", "Start (UTC) of the daily 4-hour window in which GKE may maintain the cluster."
    )
    hold_node_upgrades: Flag = option(
        True,
        "No automatic minor or node upgrades until the version's end of support (NO_MINOR_OR_NODE_UPGRADES): an "
        "upgrade would recreate the GPU nodes and reload the model; control plane patches still apply.",
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
    capacity: CapacityConfig = option(CapacityConfig(), "How the GPU nodes get their capacity.")
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = option("REGULAR", "Cluster release channel.")
    maintenance: MaintenanceConfig = option(MaintenanceConfig(), "The cluster's maintenance window and exclusion.")
    model_source: Literal["bucket", "download"] = option(
        "bucket", "bucket: imported once into GCS, read through GCS FUSE; download: vLLM downloads at every start."
    )
    import_tasks: Optional[Annotated[Int, within(1, MAX_IMPORT_TASKS, "tasks")]] = option(
        None,
        "modelSource bucket: Cloud Run tasks (8 vCPU, 32 GiB each) that import the model side by side, each a share "
        "of its files; empty: one per 100 GiB of weights (DeepSeek-R1: 7). Fewer if the hub or the project's Cloud "
        "Run quota limits you.",
        example=4,
    )
    rdma: Flag = option(False, "RDMA (RoCE) networking on the A4 nodes: extra VPCs, multi-networking, gIB.")


@dataclass(frozen=True)
class Capacity:
    """How the GPU nodes get capacity (core.catalog CAPACITY_MODES)."""

    mode: str  # on-demand | reservation | spot | flex-start
    reservation: Optional[str] = None  # reservation: projects/<p>/reservations/<name>[/reservationBlocks/<block>]
    max_run_seconds: Optional[int] = None  # flex-start: the node's lifetime

    @property
    def consume_type(self) -> str:
        """GKE's reservation affinity. On demand takes a matching non-specific reservation first, else on-demand
        capacity (ANY_RESERVATION, pulumi_gcp docs); Spot and Flex-start consume none (cluster-toolkit
        gke-node-pool: "Spot consumption option only works with ... NO_RESERVATION", flex-start likewise)."""
        return {RESERVATION: "SPECIFIC_RESERVATION", ON_DEMAND: "ANY_RESERVATION"}.get(self.mode, "NO_RESERVATION")


@dataclass(frozen=True)
class GkeSettings:
    project: str
    region: str
    zone: str  # the GPU node pool's zone (where the capacity or reservation is)
    machine: GkeMachine  # the GPU nodes' machine (core.config.placement chose or checked it)
    node_count: int  # GPU nodes, one serving pod each
    capacity: Capacity
    release_channel: str
    maintenance_window_start: str  # HH:MM UTC
    hold_node_upgrades: bool  # a NO_MINOR_OR_NODE_UPGRADES exclusion until end of support
    hf_token: Optional[SecretStr]  # None: anonymous downloads (public models)
    model_source: str = "bucket"
    import_tasks: Optional[int] = None  # None: core.durations.gke_import_tasks' default for the model
    rdma: bool = False  # RoCE networking: gVNIC + RDMA VPCs, multi-networking, the gIB NCCL plugin
    control_plane_cidrs: tuple[str, ...] = ()  # master authorized networks; empty: not restricted
    node_cidr: str = NODE_CIDR
    pod_cidr: str = POD_CIDR
    service_cidr: str = SERVICE_CIDR

    @property
    def workload_pool(self) -> str:
        return f"{self.project}.svc.id.goog"


def resolve_capacity(config: CapacityConfig, project: str, problems: Problems) -> Capacity:
    """The capacity mode with its own keys; whether the machine can be had so is core.config.placement's check."""
    if config.mode == RESERVATION and not config.reservation:
        problems.add(
            "gke.capacity.reservation",
            None,
            "must name the specific reservation when gke.capacity.mode is reservation",
            problems.set_command("gke.capacity.reservation", "<reservation>"),
        )
    if config.mode != RESERVATION and config.reservation:
        problems.add(
            "gke.capacity.reservation",
            config.reservation,
            "is only used when gke.capacity.mode is reservation",
            f"{problems.set_command('gke.capacity.mode', RESERVATION)}, or "
            f"{problems.rm_command('gke.capacity.reservation')}",
        )
    if config.mode != "flex-start" and config.max_run_hours is not None:
        problems.add(
            "gke.capacity.maxRunHours",
            config.max_run_hours,
            "is only used when gke.capacity.mode is flex-start",
            problems.rm_command("gke.capacity.maxRunHours"),
        )
    reservation = None
    if config.mode == RESERVATION and config.reservation:
        ref = config.reservation
        reservation = ref if ref.startswith("projects/") else f"projects/{project}/reservations/{ref}"
    max_run = (config.max_run_hours or MAX_RUN_HOURS) * 3600 if config.mode == "flex-start" else None
    return Capacity(config.mode, reservation, max_run)


def version_key(version: str) -> tuple[int, ...]:
    """1.32.4-gke.1236000 -> (1, 32, 4, 1236000), for comparing GKE versions."""
    numbers = re.findall(r"\d+", version)
    return tuple(int(n) for n in numbers[:4]) + (0,) * (4 - len(numbers[:4]))


def at_least(version: str, minimum: str) -> bool:
    return version_key(version) >= version_key(minimum)
