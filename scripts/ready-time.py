#!/usr/bin/env python3
"""Print, for every example stack, the modelled minutes to a serving API and its critical path (core/timeline.py).

    .venv/bin/python scripts/ready-time.py            # a Markdown table, as in the README (summarised) and docs
    .venv/bin/python scripts/ready-time.py --paths    # and each stack's critical path, step by step

Run it before and after a change to see the change's effect on `pulumi up`; nothing is created, no cloud is called.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts", ROOT / "tests"):
    sys.path.insert(0, str(path))

from docgen.ready_time import rows, table  # noqa: E402


def main(argv: list[str]) -> int:
    found = rows()
    print("\n".join(table(found)))
    if "--paths" in argv:
        for row in found:
            print(f"\n{row.name}:")
            for task in row.plan.critical_path():
                print(f"  {row.plan.start(task.name):6.1f} +{task.minutes:5.1f}  {task.name}  [{task.why}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
