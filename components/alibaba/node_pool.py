"""An ACK node pool: a fixed size, or autoscaled between min and max nodes by ACK's cluster autoscaler.

The GPU pool is labelled and tainted (`nvidia.com/gpu=present:NoSchedule`) so only pods that
tolerate the taint and select the label land on the expensive nodes; system pods, the model import
and the benchmark stay on the small CPU pool. A replaced pool is deleted before its successor is
created: ACK refuses a second pool of the same name (aliyun/terraform-provider-alicloud#6502).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
POOL_LABEL = "llm-serving/pool"  # our node label; selected by the serving pods
SYSTEM_DISK_GIB = 120
DISK_CATEGORIES = ("cloud_essd", "cloud_auto", "cloud_efficiency")


@dataclass(frozen=True)
class NodePoolArgs:
    cluster_id: pulumi.Input[str]
    pool_name: str  # ACK node pool name, unique in the cluster
    vswitch_ids: Sequence[pulumi.Input[str]]  # the zones the pool may place nodes in
    instance_types: Sequence[str]
    min_nodes: int
    max_nodes: int  # == min_nodes: a fixed pool (no autoscaling)
    image_type: str = "AliyunLinux3"
    gpu: bool = False  # tainted, and scaled as a GPU group
    spot: bool = False  # preemptible instances at the market price
    data_disk_gib: int = 0  # 0: none; else container images (and caches) live on it
    disk_category: str = "cloud_essd"
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


class NodePool(pulumi.ComponentResource):
    node_pool_id: pulumi.Output[str]
    labels: dict[str, str]  # what a pod's nodeSelector can match
    taints: list[dict[str, str]]

    def __init__(self, name: str, args: NodePoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:NodePool", name, None, opts)
        _check(args)
        self.labels = {POOL_LABEL: args.pool_name, **args.labels}
        self.taints = [dict(GPU_TAINT)] if args.gpu else []
        autoscaled = args.max_nodes > args.min_nodes
        pool = alicloud.cs.NodePool(
            f"{name}-pool",
            cluster_id=args.cluster_id,
            node_pool_name=args.pool_name,
            vswitch_ids=list(args.vswitch_ids),
            instance_types=list(args.instance_types),
            image_type=args.image_type,
            system_disk_category=args.disk_category,
            system_disk_size=SYSTEM_DISK_GIB,
            data_disks=[{"category": args.disk_category, "size": args.data_disk_gib}] if args.data_disk_gib else None,
            labels=[{"key": k, "value": v} for k, v in self.labels.items()],
            taints=[
                alicloud.cs.NodePoolTaintArgs(key=t["key"], value=t["value"], effect=t["effect"]) for t in self.taints
            ]
            or None,
            # Autoscaled pools are sized by ACK's autoscaler; a fixed pool by desired_size (a string).
            scaling_config={
                "enable": True,
                "min_size": args.min_nodes,
                "max_size": args.max_nodes,
                "type": "gpu" if args.gpu else "cpu",
            }
            if autoscaled
            else None,
            desired_size=None if autoscaled else str(args.min_nodes),
            spot_strategy="SpotAsPriceGo" if args.spot else "NoSpot",
            # Spread over the given zones so one zone's stock-out does not stop scaling.
            multi_az_policy="BALANCE",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create="40m", update="40m", delete="30m"),
            ),
        )
        self.node_pool_id = pool.node_pool_id
        self.register_outputs({"node_pool_id": pool.node_pool_id})


def _check(args: NodePoolArgs) -> None:
    problems = []
    if not 0 <= args.min_nodes <= args.max_nodes or args.max_nodes < 1:
        problems.append(f"need 0 <= min_nodes <= max_nodes and max_nodes >= 1, got {args.min_nodes}..{args.max_nodes}")
    if not args.instance_types:
        problems.append("instance_types must not be empty")
    if args.data_disk_gib and not 40 <= args.data_disk_gib <= 32768:
        problems.append(f"data_disk_gib must be 40-32768, got {args.data_disk_gib}")
    if args.disk_category not in DISK_CATEGORIES:
        problems.append(f"disk_category must be one of {DISK_CATEGORIES}")
    if problems:
        raise ValueError("NodePool: " + "; ".join(problems))


def cluster_autoscaling(name: str, cluster_id: pulumi.Input[str], opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """Turns node autoscaling on at cluster level: without it an autoscaled pool stays at its minimum, extra
    replicas stay Pending and a surge rollout hangs (help "Auto scaling of nodes": "Node pool auto scaling
    only takes effect after you enable it at the cluster level"; audit D6).

    cluster-autoscaler (goatscaler, instant scaling, is the other choice). GPU nodes use emptyDirs, so local
    storage must not pin them (skip_nodes_with_local_storage=False); scale up from zero for gpuNodes.min 0.
    The provider's delete is a no-op (TF resource_alicloud_cs_autoscaling_config.go): the cluster's deletion
    removes it. Prerequisites per account (docs/targets/ack.md, "Before you begin"): Auto Scaling (ESS) activated and
    the AliyunCSManagedAutoScalerRole authorised.
    """
    return alicloud.cs.AutoscalingConfig(
        f"{name}-autoscaling",
        cluster_id=cluster_id,
        scaler_type="cluster-autoscaler",
        expander="least-waste",
        scale_up_from_zero=True,
        scale_down_enabled=True,
        skip_nodes_with_local_storage=False,
        skip_nodes_with_system_pods=True,
        opts=opts,
    )
