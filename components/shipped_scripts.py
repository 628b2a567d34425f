"""The shell scripts as the machines get them: each `source .../lib-*.sh` line of a script in components/scripts is
replaced by that library's text, so that user-data and Cloud Assistant commands stay single files while the
scripts share one retry and one set of worker steps. Run from the repository (the tests), the line sources the
library beside the script instead."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"
# The directive and the line, as written in the scripts.
_LIBRARY_LINE = re.compile(
    r'^# shellcheck source=/dev/null\nsource "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/(lib-[a-z-]+\.sh)"[^\n]*\n',
    re.MULTILINE,
)


def library(name: str) -> str:
    """A library's functions, without its `shellcheck shell=` line (the script's shebang says which shell)."""
    text = (SCRIPTS / name).read_text()
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# shellcheck shell="))


def script(name: str) -> str:
    """The script `name` with its libraries inlined."""
    return _LIBRARY_LINE.sub(lambda found: library(found.group(1)), (SCRIPTS / name).read_text())


def body(name: str) -> str:
    """script(name) without its shebang, to follow a rendered header."""
    return script(name).split("\n", 1)[1]
