"""ACK's virtual node add-on: virtual-kubelet nodes that run pods on ECI or ACS capacity, billed per pod.

`cleanup_cloud_resources` makes removing the add-on also delete what it created (the provider
requires it for `ack-virtual-node`). No add-on config is set: the add-on's own defaults (the
cluster's vSwitches and security group) are used; ECI pods may name vSwitches by annotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

ADDON = "ack-virtual-node"
# Virtual nodes carry this taint (virtual-kubelet convention); pods sent there must tolerate it.
TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class VirtualNodesArgs:
    cluster_id: pulumi.Input[str]


class VirtualNodes(pulumi.ComponentResource):
    addon: alicloud.cs.KubernetesAddon

    def __init__(self, name: str, args: VirtualNodesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:VirtualNodes", name, None, opts)
        self.addon = alicloud.cs.KubernetesAddon(
            f"{name}-addon",
            cluster_id=args.cluster_id,
            name=ADDON,
            cleanup_cloud_resources=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
