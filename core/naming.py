"""Kubernetes object names derived from Pulumi resource names."""

from __future__ import annotations

import re


def dns_name(name: str, suffix: str = "") -> str:
    """A DNS-1123 label of at most 63 characters, ending in `-<suffix>` when one is given."""
    base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not suffix:
        return base[:63].rstrip("-")
    return f"{base[: 63 - len(suffix) - 1].rstrip('-')}-{suffix}"
