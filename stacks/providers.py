"""Explicit providers built from the stack's standard provider config (alicloud:*, gcp:*, kubernetes:*).

An explicit provider does not read the stack's `alicloud:region` or `alicloud:profile` the way the default
provider would, so every key set in the provider's namespace is passed on as the provider argument of that
name (camelCase -> snake_case, nested objects too): profiles, assume-role, OIDC, impersonation and custom
endpoints work as each provider documents them. A key the provider does not know is a config error;
a key stored as a secret stays a secret.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

import pulumi

from core.config.problems import ConfigError, Problem
from core.config.settings import ProviderConfig


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {snake(k): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def provider_args(config: ProviderConfig, args_type: type, **fixed: Any) -> dict[str, Any]:
    """Keyword arguments for `args_type`'s provider: the stack's provider keys, then `fixed` (the program's own)."""
    accepted = set(inspect.signature(args_type).parameters) - {"resource_name", "opts"}
    unknown = [k for k in config.values if snake(k) not in accepted]
    if unknown:
        raise ConfigError(
            [
                Problem(
                    f"{config.namespace}:{k}",
                    config.values[k],
                    f"is not a setting of the {config.namespace} provider",
                    f"pulumi config rm {config.namespace}:{k} (settings: the provider's documentation)",
                )
                for k in unknown
            ]
        )
    args: dict[str, Any] = {}
    for key, value in config.values.items():
        value = _snake_keys(value)
        args[snake(key)] = pulumi.Output.secret(value) if key in config.secret_keys else value
    args.update(fixed)
    return args
