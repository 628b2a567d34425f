"""The pinned versions of pyproject.toml (the one resolved environment: uv.lock), for tests that compare pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_pins() -> dict[str, str]:
    """name -> version of every `name==version` in the project's dependencies and dependency groups."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = list(project["project"]["dependencies"])
    for group in project.get("dependency-groups", {}).values():
        requirements += group
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", requirement.split(";")[0].strip())
        assert match, f"{requirement} is not pinned with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def requirement_pins(path: Path) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.MULTILINE)
    }
