"""One module per deployment target; only the chosen target's module (and cloud SDK) is imported."""

from __future__ import annotations

import importlib

import pulumi

from core.config import Settings
from core.ready_time import serves_nothing_yet, timeline

# Target -> the module that composes it. Modules sit with the cloud that runs them.
TARGET_MODULES = {
    "ecs": "stacks.alibaba.ecs",
    "acs": "stacks.alibaba.acs",
    "ack": "stacks.alibaba.ack",
    "ack-edge": "stacks.alibaba.ack_edge",
    "gke": "stacks.gcp.gke",
    "kubernetes": "stacks.kubernetes",
}


def build(settings: Settings) -> dict[str, object]:
    """Build the target's resources and return its stack outputs, with the modelled time to a serving API
    (printed first, so `pulumi preview` shows it before anything is created)."""
    expected = timeline(settings)
    first_run = serves_nothing_yet(settings)
    if first_run:
        pulumi.log.info(
            f"{settings.stack}: the first run (ackEdge.clusterOnly) serves nothing yet: about {expected.total:.0f} min "
            "to the cluster, its system pool and the model import; the API comes with the second run "
            "(core/timeline.py)"
        )
    else:
        pulumi.log.info(f"{settings.stack}: {expected.summary()} (core/timeline.py)")
    outputs = importlib.import_module(TARGET_MODULES[settings.target]).build(settings)
    if not first_run:
        outputs["expectedReadyMinutes"] = expected.output()
    return outputs
