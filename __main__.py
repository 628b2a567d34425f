"""LLM inference on the cloud in one `pulumi up`: read settings, build the chosen target, export outputs."""

import pulumi

from core.config import load
from stacks import build

for name, value in build(load()).items():
    if value is not None:
        pulumi.export(name, value)
