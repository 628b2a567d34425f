"""Writes the generated documentation pages and the Grafana dashboard (run after changing the config schema,
the outputs, the resources a target creates, the prices or core/observability.py).

Usage: .venv/bin/python scripts/docs.py [--check]
With --check, writes nothing and exits 1 when a committed page differs from what the code generates.

The outputs reference, the costs page and the resource diagrams come from the example stacks run under the
test harness's mocks (tests/harness.py, scripts/docgen/); the config and model references from the schema.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests", ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from core import observability  # noqa: E402
from core.config import reference  # noqa: E402


def pages() -> dict[Path, Callable[[], str]]:
    """Every generated file and the function that prints it."""
    from docgen import costs, diagrams, examples, outputs, policies, ready_time, runs

    def diagram(target: str) -> Callable[[], str]:
        def render() -> str:
            example = runs.example_of(target)
            return diagrams.graph(example.run, example.stack, target)

        return render

    docs = ROOT / "docs"
    found: dict[Path, Callable[[], str]] = {
        docs / "reference" / "config.md": reference.render,
        docs / "reference" / "models.md": reference.render_models,
        docs / "reference" / "outputs.md": outputs.render,
        docs / "reference" / "policies.md": policies.render,
        docs / "reference" / "examples.md": examples.render,
        docs / "reference" / "ready-time.md": ready_time.render,
        docs / "costs.md": costs.render,
        ROOT / "dashboards" / "vllm.json": observability.render_grafana_dashboard,
    }
    for target in runs.TARGET_EXAMPLES:
        found[docs / "diagrams" / f"{target}.dot"] = diagram(target)
    return found


def stale(write: bool) -> list[Path]:
    """The generated files that differ from what the code prints (written anew when `write`)."""
    found = []
    for path, render in pages().items():
        text = render()
        if path.exists() and path.read_text() == text:
            continue
        found.append(path.relative_to(ROOT))
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return found


def main() -> int:
    check = "--check" in sys.argv[1:]
    found = stale(write=not check)
    if found:
        print(("stale: " if check else "wrote: ") + ", ".join(map(str, found)))
    return 1 if check and found else 0


if __name__ == "__main__":
    sys.exit(main())
