"""A secret config value that never prints itself (repr, logs, error messages)."""

from __future__ import annotations


class SecretStr:
    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('****')"
