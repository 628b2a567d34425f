"""Bad configuration, reported all at once: which key, what it was, what is allowed, and the command that fixes it.

Keys are paths inside the project's config namespace (``engine.maxModelLen``), or fully qualified provider keys
(``alicloud:region``). The namespace is the project's name, so a fork renamed in Pulumi.yaml reads and reports
its own keys.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

MASK = "****"
PROVIDER_NAMESPACES = ("alicloud", "gcp", "kubernetes")


@dataclass(frozen=True)
class Problem:
    """A single bad config value."""

    key: str  # a path in the project namespace (engine.maxModelLen) or a qualified key (alicloud:region)
    value: object
    allowed: str
    fix: str
    namespace: str = "llm"

    @property
    def qualified_key(self) -> str:
        return qualify(self.key, self.namespace)

    def __str__(self) -> str:
        end = "" if self.allowed.endswith(("?", ".")) else "."
        return f"{self.qualified_key} = {self.value!r}: {self.allowed}{end} Fix: {self.fix}"


class ConfigError(Exception):
    """Raised before any resource is registered; lists every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration error(s):\n{lines}")


def qualify(key: str, namespace: str) -> str:
    """`engine.maxModelLen` -> `llm:engine.maxModelLen`; provider keys (`alicloud:region`) stay as they are."""
    return key if key.split(":", 1)[0] in PROVIDER_NAMESPACES and ":" in key else f"{namespace}:{key}"


def _member(key: str) -> str:
    """A map key in --path syntax: `.name`, or `["name.with.dots"]`."""
    return f".{key}" if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key) else f'["{key}"]'


def shell_value(value: Any) -> str:
    """A value as `pulumi config set` takes it on a shell command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return shlex.quote(json.dumps(list(value) if isinstance(value, tuple) else value))
    return shlex.quote(str(value))


class Problems:
    """Collects problems for one namespace and writes their fix commands."""

    def __init__(self, namespace: str):
        self.namespace = namespace
        self.items: list[Problem] = []

    def add(self, key: str, value: object, allowed: str, fix: str) -> None:
        self.items.append(Problem(key, value, allowed, fix, self.namespace))

    def qualified(self, key: str) -> str:
        return qualify(key, self.namespace)

    def set_command(self, key: str, value: Any, secret: bool = False) -> str:
        """The `pulumi config set` command for `key` (a path: --path, so nested keys and list items work).

        A list is set item by item (`key[0]`, `key[1]`) and a map key by key: `--path` stores a JSON text as a
        string, not as a list.
        """
        if isinstance(value, (list, tuple)) and value:
            return " && ".join(self.set_command(f"{key}[{i}]", v, secret) for i, v in enumerate(value))
        if isinstance(value, dict) and value:
            return " && ".join(self.set_command(f"{key}{_member(k)}", v, secret) for k, v in value.items())
        if qualify(key, self.namespace) == key:
            return f"pulumi config set {'--secret ' if secret else ''}{key} {shell_value(value)}"
        if secret:
            return f"pulumi config set --secret {self.namespace}:{key} {shell_value(value)}"
        return f"pulumi config set --path '{self.namespace}:{key}' {shell_value(value)}"

    def rm_command(self, key: str) -> str:
        return f"pulumi config rm --path '{self.qualified(key)}'"

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def nearest(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The closest candidate to a mistyped key, compared by name and by the last path segment."""
    candidates = list(candidates)
    by_leaf = {c.rsplit(".", 1)[-1].lower(): c for c in candidates}
    for pool, key in ((by_leaf, word.rsplit(".", 1)[-1].lower()), ({c.lower(): c for c in candidates}, word.lower())):
        found = difflib.get_close_matches(key, list(pool), n=1, cutoff=0.75)
        if found:
            return pool[found[0]]
    return None
