"""Configuration, parsed once into validated, typed settings.

The schema is one pydantic model per group of keys (core/config/root.py lists them); `parse` checks every
key, the rules that span keys and the target's own rules, and raises one ConfigError listing every problem
before any resource exists. `load` reads the running stack's config through pulumi.Config() of the project's
own namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional

from core.config.parse import parse
from core.config.problems import ConfigError, Problem
from core.config.settings import Settings
from core.config.source import ConfigValues, from_pulumi
from core.config.source import from_mapping as _values_from_mapping

__all__ = ["ConfigError", "ConfigValues", "Problem", "Settings", "from_mapping", "load", "parse"]


def load() -> Settings:
    """Settings of the running Pulumi stack."""
    import pulumi

    return parse(from_pulumi(), pulumi.get_stack())


def from_mapping(
    values: Mapping[str, Any],
    stack: str = "dev",
    namespace: str = "llm",
    secret_keys: Iterable[str] = ("apiKey", "hfToken"),
    providers: Optional[Mapping[str, Mapping[str, Any]]] = None,
    provider_secrets: Iterable[str] = (),
) -> Settings:
    """parse() over plain values (tests, scripts); secrets given here count as stored secretly."""
    return parse(_values_from_mapping(values, namespace, secret_keys, providers, provider_secrets), stack)
