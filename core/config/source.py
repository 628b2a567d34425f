"""Where config values come from: the running Pulumi stack, or a plain mapping (tests, scripts).

Values are read with the public `pulumi.Config(<namespace>)`, whose namespace is the project's name
(`pulumi.get_project()`), so a fork renamed in Pulumi.yaml keeps working. Structured values (`pulumi config
set --path llm:engine.maxModelLen 8192`) arrive as JSON text and are decoded here. Two things the public API
cannot answer are taken from `pulumi.runtime` (exported there, documented as the config runtime): the list of
keys that are set (so an unknown or misspelled key is an error, not silently ignored) and whether a key is
stored as a secret (so a plaintext API key is refused).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from core.config.problems import PROVIDER_NAMESPACES  # the provider keys the explicit providers are built from


@dataclass(frozen=True)
class ConfigValues:
    """The stack's config: project keys (decoded), provider keys per namespace, and which are secret."""

    namespace: str
    values: Mapping[str, Any]
    secret_keys: frozenset[str] = frozenset()  # project keys stored as secrets
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # "alicloud" -> {"region": ...}
    provider_secrets: frozenset[str] = frozenset()  # qualified provider keys stored as secrets

    def provider(self, namespace: str) -> Mapping[str, Any]:
        return self.providers.get(namespace, {})


def decode(text: Any) -> Any:
    """A config value as the CLI passes it: JSON for objects, lists, numbers and booleans; else plain text."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def from_mapping(
    values: Mapping[str, Any],
    namespace: str = "llm",
    secret_keys: Iterable[str] = (),
    providers: Optional[Mapping[str, Mapping[str, Any]]] = None,
    provider_secrets: Iterable[str] = (),
) -> ConfigValues:
    """Config from Python values (tests, scripts); strings are decoded as the CLI's are."""
    return ConfigValues(
        namespace=namespace,
        values={k: decode(v) for k, v in values.items()},
        secret_keys=frozenset(secret_keys),
        providers={ns: {k: decode(v) for k, v in keys.items()} for ns, keys in (providers or {}).items()},
        provider_secrets=frozenset(provider_secrets),
    )


def _set_keys() -> list[str]:
    """Every fully qualified config key of the running stack (`<namespace>:<key>`)."""
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return sorted(k for k in keys if ":" in k)


def from_pulumi() -> ConfigValues:
    """The running stack's config, read through pulumi.Config() of the project's own namespace."""
    import pulumi
    from pulumi.runtime import is_config_secret

    namespace = pulumi.get_project()
    keys = _set_keys()

    def read(ns: str) -> dict[str, Any]:
        bag = pulumi.Config(ns)
        prefix = f"{ns}:"
        return {k[len(prefix) :]: decode(bag.get(k[len(prefix) :])) for k in keys if k.startswith(prefix)}

    values = read(namespace)
    providers = {ns: read(ns) for ns in PROVIDER_NAMESPACES}
    return ConfigValues(
        namespace=namespace,
        values=values,
        secret_keys=frozenset(k for k in values if is_config_secret(f"{namespace}:{k}")),
        providers=providers,
        provider_secrets=frozenset(
            f"{ns}:{k}" for ns, keys_of in providers.items() for k in keys_of if is_config_secret(f"{ns}:{k}")
        ),
    )
