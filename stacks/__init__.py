"""One module per deployment target; only the chosen target's module (and cloud SDK) is imported."""
from __future__ import annotations

import importlib

from core.settings import Settings


def build(settings: Settings) -> dict[str, object]:
    """Build the target's resources and return its stack outputs."""
    module = importlib.import_module(f"stacks.{settings.target.replace('-', '_')}")
    return module.build(settings)
