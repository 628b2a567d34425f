"""The A4 High GPU node pool: a4-highgpu-8g, 8 x B200 with GKE-managed drivers, local SSD, gVNIC.

Serving pods tolerate the GPU taint and take all 8 GPUs of a node. Changing the driver version or
the machine recreates the pool (a new node, a new model load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from core.config.gke import A4_ACCELERATOR, A4_GPUS, A4_MACHINE_TYPE, Reservation

# B200 needs driver >= 570: LATEST on GKE 1.32 (cluster-toolkit PR #3704, reference.md section 3).
GPU_DRIVER_VERSION = "LATEST"
LOCAL_SSDS = 32  # every local SSD of a4-highgpu-8g (32 x 375 GB), as ephemeral storage
GPU_TAINT: gcp.container.NodePoolNodeConfigTaintArgsDict = {
    "key": "nvidia.com/gpu",
    "value": "present",
    "effect": "NO_SCHEDULE",
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
POOL_LABEL = {"llm/pool": "a4"}
RESERVATION_KEY = "compute.googleapis.com/reservation-name"


@dataclass(frozen=True)
class A4NodePoolArgs:
    project: str
    cluster: pulumi.Input[str]  # cluster id
    region: str
    zone: str
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


class A4NodePool(pulumi.ComponentResource):
    pool: gcp.container.NodePool

    def __init__(self, name: str, args: A4NodePoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:A4NodePool", name, None, opts)
        node_config: gcp.container.NodePoolNodeConfigArgsDict = {
            "machine_type": A4_MACHINE_TYPE,
            "guest_accelerators": [
                {
                    "type": A4_ACCELERATOR,
                    "count": A4_GPUS,
                    "gpu_driver_installation_config": {"gpu_driver_version": GPU_DRIVER_VERSION},
                }
            ],
            "gvnic": {"enabled": True},
            "ephemeral_storage_local_ssd_config": {"local_ssd_count": LOCAL_SSDS},
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "taints": [GPU_TAINT],
            "labels": dict(POOL_LABEL),
            "reservation_affinity": reservation_affinity(args.reservation),
            "service_account": args.service_account,
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "resource_labels": dict(args.labels),
        }
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
            node_config=node_config,
            # Nodes are not upgraded under a loaded model by surprise: GKE still upgrades within the channel,
            # one node at a time with no surge (a surge node would need spare A4 capacity).
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
