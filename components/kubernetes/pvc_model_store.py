"""The model store of the `kubernetes` target: one PVC of the cluster's storage class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from core.naming import dns_name


@dataclass(frozen=True)
class PvcModelStoreArgs:
    namespace: pulumi.Input[str]
    size_gib: int
    storage_class: Optional[str] = None  # None: the cluster default
    access_mode: str = "ReadWriteOnce"  # ReadWriteMany when several pods (maybe on several nodes) read it
    retain: bool = False  # True: the PVC (and so its data) survives `pulumi destroy`


class PvcModelStore(pulumi.ComponentResource):
    """One PVC: the import Job writes the model into it, serving mounts it read-only."""

    serving_claim: pulumi.Output[str]
    import_claim: pulumi.Output[str]
    results_claim: Optional[pulumi.Output[str]]  # None: benchmark results stay in the Job's log
    credentials_secret: Optional[pulumi.Output[str]] = None

    def __init__(self, name: str, args: PvcModelStoreArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:PvcModelStore", name, None, opts)
        if args.access_mode not in ("ReadWriteOnce", "ReadWriteMany"):
            raise ValueError(f"access_mode must be ReadWriteOnce or ReadWriteMany, got {args.access_mode!r}")
        if args.size_gib <= 0:
            raise ValueError(f"size_gib must be positive, got {args.size_gib}")
        spec: k8s.core.v1.PersistentVolumeClaimSpecArgsDict = {
            "access_modes": [args.access_mode],
            "resources": {"requests": {"storage": f"{args.size_gib}Gi"}},
        }
        if args.storage_class is not None:
            spec["storage_class_name"] = args.storage_class
        claim = k8s.core.v1.PersistentVolumeClaim(
            name,
            metadata={
                "name": dns_name(name),
                "namespace": args.namespace,
                # With a WaitForFirstConsumer class the claim binds only once the import pod exists, and
                # that pod waits for the claim: do not wait for Bound (the import Job is awaited instead).
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain),
        )
        self.serving_claim = claim.metadata["name"]
        self.import_claim = self.serving_claim
        self.results_claim = None
        self.register_outputs({"claim": self.serving_claim})
