"""The GPU node pool: one catalog machine type (core.catalog.GKE_MACHINES) with GKE-managed drivers, local
SSD as ephemeral storage and gVNIC, getting its capacity the configured way (core.config.gke.Capacity):
on demand, from a specific reservation, as Spot VMs, or through Flex-start.

Flex-start (pulumi_gcp NodePoolNodeConfig.flex_start, max_run_duration) follows Google's own module
(cluster-toolkit modules/compute/gke-node-pool: "enable_flex_start needs node auto_repair set to false",
"does not work with static_node_count", NO_RESERVATION, location_policy ANY) and GKE's flex-start how-to
(`--flex-start --enable-autoscaling --num-nodes=0 --total-max-nodes N --location-policy=ANY
--reservation-affinity=none --no-enable-autorepair`): the pool starts empty and the cluster autoscaler adds
nodes for the pending serving pods, each of which GKE deletes when its max run duration ends.

Serving pods tolerate the GPU taint and take all of a node's GPUs. Changing the machine or the driver
version recreates the pool (a new node, a new model load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from core.catalog import FLEX_START, RESERVATION, SPOT, GkeMachine
from core.config.gke import Capacity

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
# Secure boot with integrity monitoring, as cluster-toolkit's gke-node-pool module sets by default (also for its A4
# blueprint and daily A4 test): COS with GKE-installed drivers loads only signed modules ("Keep enabled unless custom
# kernel modules need to be loaded").
SHIELDED: gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgsDict = {
    "enable_secure_boot": True,
    "enable_integrity_monitoring": True,
}
RESERVATION_KEY = "compute.googleapis.com/reservation-name"
# GKE image streaming (the engine image's 10-20 GB start streamed once the image is cached): "You must use the
# Container-Optimized OS with containerd node image", the Container File System API on, and a custom node service
# account with roles/serviceusage.serviceUsageConsumer (GKE how-to image-streaming, Requirements; the stack grants
# both). Set explicitly: COS_CONTAINERD is also GKE's default node image.
IMAGE_TYPE = "COS_CONTAINERD"


@dataclass(frozen=True)
class GpuNodePoolArgs:
    project: str
    cluster: pulumi.Input[str]  # cluster id
    region: str
    zone: str
    machine: GkeMachine
    node_count: int
    capacity: Capacity
    service_account: pulumi.Input[str]  # node service account email
    labels: Mapping[str, str] = field(default_factory=dict)
    # additional_node_network_configs ({"network", "subnetwork"}), e.g. components.gcp.rdma's; empty: none
    additional_networks: Sequence[Mapping[str, pulumi.Input[str]]] = ()
    # the enabled APIs (container, containerfilesystem) and the node account's roles: the pool waits for them
    depends_on: Sequence[pulumi.Resource] = ()
    network_tags: Sequence[str] = ()  # e.g. GkeCluster.node_tag, so the cluster's firewall rules reach the nodes


def reservation_affinity(capacity: Capacity) -> gcp.container.NodePoolNodeConfigReservationAffinityArgsDict:
    affinity: gcp.container.NodePoolNodeConfigReservationAffinityArgsDict = {
        "consume_reservation_type": capacity.consume_type
    }
    if capacity.mode == RESERVATION:
        # projects/<p>/reservations/<name>[/reservationBlocks/<block>], as cluster-toolkit sends it.
        affinity["key"] = RESERVATION_KEY
        affinity["values"] = [capacity.reservation or ""]
    return affinity


def node_config(args: GpuNodePoolArgs) -> gcp.container.NodePoolNodeConfigArgsDict:
    machine, capacity = args.machine, args.capacity
    config: gcp.container.NodePoolNodeConfigArgsDict = {
        "machine_type": machine.name,
        "guest_accelerators": [
            {
                "type": machine.accelerator,
                "count": machine.gpu_count,
                "gpu_driver_installation_config": {"gpu_driver_version": GPU_DRIVER_VERSION},
            }
        ],
        "gvnic": {"enabled": True},
        "image_type": IMAGE_TYPE,
        "gcfs_config": {"enabled": True},
        # The machine's Local SSDs hold the node's ephemeral storage: GCS FUSE's file cache, the download mode's
        # copy, images. A3 and A4 come with a fixed number (cluster-toolkit disk_definitions.tf); G2's are optional.
        # The boot disk type is GKE's default (A3 Ultra and A4 boot only from Hyperdisk Balanced, which GKE picks;
        # cluster-toolkit leaves disk_type unset for A4 too).
        "ephemeral_storage_local_ssd_config": {"local_ssd_count": machine.local_ssds},
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": SHIELDED,
        "taints": [GPU_TAINT],
        "labels": dict(POOL_LABEL),
        "reservation_affinity": reservation_affinity(capacity),
        "service_account": args.service_account,
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "resource_labels": dict(args.labels),
    }
    if args.network_tags:
        config["tags"] = list(args.network_tags)
    if capacity.mode == SPOT:
        config["spot"] = True
    if capacity.mode == FLEX_START:
        config["flex_start"] = True
        config["max_run_duration"] = f"{capacity.max_run_seconds}s"
    return config


class GpuNodePool(pulumi.ComponentResource):
    pool: gcp.container.NodePool

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:GpuNodePool", name, None, opts)
        networks: list[gcp.container.NodePoolNetworkConfigAdditionalNodeNetworkConfigArgsDict] = [
            {"network": n["network"], "subnetwork": n["subnetwork"]} for n in args.additional_networks
        ]
        flex = args.capacity.mode == FLEX_START
        size: dict = (
            # Empty until the serving pods are pending; the autoscaler adds up to the configured count.
            {
                "initial_node_count": 0,
                "autoscaling": {
                    "total_min_node_count": 0,
                    "total_max_node_count": args.node_count,
                    "location_policy": "ANY",
                },
            }
            if flex
            else {"node_count": args.node_count}
        )
        self.pool = gcp.container.NodePool(
            f"{name}-pool",
            project=args.project,
            cluster=args.cluster,
            location=args.region,
            node_locations=[args.zone],
            **size,
            node_config=node_config(args),
            # Nodes are not upgraded under a loaded model by surprise: GKE still upgrades within the channel,
            # one node at a time with no surge (a surge node would need spare GPU capacity). Flex-start nodes
            # are not auto-repaired (GKE refuses it).
            management={"auto_repair": not flex, "auto_upgrade": True},
            upgrade_settings={"max_surge": 0, "max_unavailable": 1},
            network_config={"additional_node_network_configs": networks} if networks else None,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                custom_timeouts=pulumi.CustomTimeouts(create="60m", update="60m", delete="30m"),
            ),
        )
        self.register_outputs({"pool": self.pool.name})
