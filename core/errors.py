"""One error type for bad configuration, so every problem is reported at once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """A single bad config value: which key, what it was, what is allowed, how to fix it."""

    key: str
    value: object
    allowed: str
    fix: str

    def __str__(self) -> str:
        return f"llm:{self.key} = {self.value!r}: {self.allowed}. Fix: {self.fix}"


class ConfigError(Exception):
    """Raised before any resource is registered; lists every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration error(s):\n{lines}")
