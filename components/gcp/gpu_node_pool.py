"""The GPU node pool: one catalog machine type (core.catalog.GKE_MACHINES) with GKE-managed drivers, local
SSD as ephemeral storage and gVNIC.

Serving pods tolerate the GPU taint and take all of a node's GPUs. Changing the machine or the driver
version recreates the pool (a new node, a new model load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from core.catalog import GkeMachine
from core.config.gke import Reservation

# LATEST on every GPU: B200 needs the R570 branch, which LATEST gives on GKE 1.32 (COS board-overlays af3ca4ea,
# cluster-toolkit PR #3704); for L4 (>= 525.60.13) and H100/H200 (branch not captured) the newest driver of the
# node's GKE version is the safe choice too. DEFAULT would follow GKE's default branch instead.
GPU_DRIVER_VERSION = "LATEST"
GPU_TAINT: gcp.container.NodePoolNodeConfigTaintArgsDict = {
    "key": "nvidia.com/gpu",
    "value": "present",
    "effect": "NO_SCHEDULE",
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
POOL_LABEL = {"llm/pool": "gpu"}
RESERVATION_KEY = "compute.googleapis.com/reservation-name"


@dataclass(frozen=True)
class GpuNodePoolArgs:
    project: str
    cluster: pulumi.Input[str]  # cluster id
    region: str
    zone: str
    machine: GkeMachine
    node_count: int
    reservation: Reservation
    service_account: pulumi.Input[str]  # node service account email
    labels: Mapping[str, str] = field(default_factory=dict)
    # additional_node_network_configs ({"network", "subnetwork"}), e.g. components.gcp.rdma's; empty: none
    additional_networks: Sequence[Mapping[str, pulumi.Input[str]]] = ()
    depends_on: Sequence[pulumi.Resource] = ()  # the enabled APIs (container): the pool waits for them


def reservation_affinity(reservation: Reservation) -> gcp.container.NodePoolNodeConfigReservationAffinityArgsDict:
    affinity: gcp.container.NodePoolNodeConfigReservationAffinityArgsDict = {
        "consume_reservation_type": reservation.consume_type
    }
    if reservation.mode == "specific":
        affinity["key"] = RESERVATION_KEY
        affinity["values"] = [reservation.name or ""]
    return affinity


def node_config(args: GpuNodePoolArgs) -> gcp.container.NodePoolNodeConfigArgsDict:
    machine = args.machine
    return {
        "machine_type": machine.name,
        "guest_accelerators": [
            {
                "type": machine.accelerator,
                "count": machine.gpu_count,
                "gpu_driver_installation_config": {"gpu_driver_version": GPU_DRIVER_VERSION},
            }
        ],
        "gvnic": {"enabled": True},
        # The machine's Local SSDs hold the node's ephemeral storage: GCS FUSE's file cache, the download mode's
        # copy, images. A3 and A4 come with a fixed number (cluster-toolkit disk_definitions.tf); G2's are optional.
        # The boot disk type is GKE's default (A3 Ultra and A4 boot only from Hyperdisk Balanced, which GKE picks;
        # cluster-toolkit leaves disk_type unset for A4 too).
        "ephemeral_storage_local_ssd_config": {"local_ssd_count": machine.local_ssds},
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "taints": [GPU_TAINT],
        "labels": dict(POOL_LABEL),
        "reservation_affinity": reservation_affinity(args.reservation),
        "service_account": args.service_account,
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "resource_labels": dict(args.labels),
    }


class GpuNodePool(pulumi.ComponentResource):
    pool: gcp.container.NodePool

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:GpuNodePool", name, None, opts)
        networks: list[gcp.container.NodePoolNetworkConfigAdditionalNodeNetworkConfigArgsDict] = [
            {"network": n["network"], "subnetwork": n["subnetwork"]} for n in args.additional_networks
        ]
        self.pool = gcp.container.NodePool(
            f"{name}-pool",
            project=args.project,
            cluster=args.cluster,
            location=args.region,
            node_locations=[args.zone],
            node_count=args.node_count,
            node_config=node_config(args),
            # Nodes are not upgraded under a loaded model by surprise: GKE still upgrades within the channel,
            # one node at a time with no surge (a surge node would need spare GPU capacity).
            management={"auto_repair": True, "auto_upgrade": True},
            upgrade_settings={"max_surge": 0, "max_unavailable": 1},
            network_config={"additional_node_network_configs": networks} if networks else None,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                custom_timeouts=pulumi.CustomTimeouts(create="60m", update="60m", delete="30m"),
            ),
        )
        self.register_outputs({"pool": self.pool.name})
