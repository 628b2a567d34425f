"""A ResourcePolicy (scheduling.alibabacloud.com/v1alpha1): where matching pods go, in order.

ACK's scheduler tries the units in order (`strategy: prefer`): here the IDC edge node pool first,
then virtual nodes (ECI or ACS) up to `max` pods. A unit's podLabels/podAnnotations are added to a pod
only when it lands in that unit, so the ECI spec annotations or ACS labels never reach IDC pods.
Scale-in removes pods from the last unit first. Fields per "Configure priority-based resource
scheduling" (ACK documentation); the CRD is not validated offline, so tests assert its fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

API_VERSION = "scheduling.alibabacloud.com/v1alpha1"
NODE_POOL_ID_LABEL = "alibabacloud.com/nodepool-id"  # set by ACK on every node of a node pool
RESOURCES = ("ecs", "eci", "acs", "elastic")


@dataclass(frozen=True)
class Unit:
    resource: str  # ecs (existing nodes, chosen by node_selector) | eci | acs (virtual nodes)
    node_selector: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    max: Optional[int] = None  # most pods in this unit; None: no limit
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)

    def spec(self) -> dict:
        unit: dict = {"resource": self.resource}
        if self.node_selector:
            unit["nodeSelector"] = dict(self.node_selector)
        if self.max is not None:
            unit["max"] = self.max
        if self.pod_labels:
            unit["podLabels"] = dict(self.pod_labels)
        if self.pod_annotations:
            unit["podAnnotations"] = dict(self.pod_annotations)
        return unit


@dataclass(frozen=True)
class ResourcePolicyArgs:
    namespace: pulumi.Input[str]
    name: str
    selector: Mapping[str, str]  # pod labels (the policy applies to pods of its own namespace)
    units: Sequence[Unit]  # in order of preference


class ResourcePolicy(pulumi.ComponentResource):
    def __init__(self, name: str, args: ResourcePolicyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:ResourcePolicy", name, None, opts)
        bad = [u.resource for u in args.units if u.resource not in RESOURCES]
        if not args.units or bad or not args.selector:
            raise ValueError(f"ResourcePolicy needs a selector and units of {RESOURCES}; got {bad or 'none'}")
        k8s.apiextensions.CustomResource(
            f"{name}-policy",
            api_version=API_VERSION,
            kind="ResourcePolicy",
            metadata={"name": args.name, "namespace": args.namespace},
            spec={"selector": dict(args.selector), "strategy": "prefer", "units": [u.spec() for u in args.units]},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
