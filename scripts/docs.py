"""Writes the generated documentation pages and the Grafana dashboard (run after changing the config schema or
core/observability.py).

Usage: .venv/bin/python scripts/docs.py [--check]
With --check, writes nothing and exits 1 when a committed page differs from what the code generates.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import observability  # noqa: E402
from core.config import reference  # noqa: E402

PAGES = {
    ROOT / "docs" / "reference" / "config.md": reference.render,
    ROOT / "docs" / "reference" / "models.md": reference.render_models,
    ROOT / "dashboards" / "vllm.json": observability.render_grafana_dashboard,
}


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for path, render in PAGES.items():
        text = render()
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(("stale: " if check else "wrote: ") + ", ".join(map(str, stale)))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
