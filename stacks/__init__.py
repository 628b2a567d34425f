"""One module per deployment target; only the chosen target's module (and cloud SDK) is imported."""

from __future__ import annotations

import importlib

from core.config import Settings

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
    """Build the target's resources and return its stack outputs."""
    return importlib.import_module(TARGET_MODULES[settings.target]).build(settings)
