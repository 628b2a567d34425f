#!/usr/bin/env python3
"""Print, for every example stack, the modelled minutes to a serving API and its critical path (core/timeline.py).

    .venv/bin/python scripts/ready-time.py            # a Markdown table, as in the README
    .venv/bin/python scripts/ready-time.py --paths    # and each stack's critical path, step by step

Run it before and after a change to see the change's effect on `pulumi up`; nothing is created, no cloud is called.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config.parse import parse  # noqa: E402
from core.config.source import from_mapping  # noqa: E402
from core.ready_time import GOALS, timeline  # noqa: E402

STACKS = ("dev", "prod", "acs", "acs-r1", "ack", "ack-edge", "gke", "kubernetes")


def stack_file(stack: str) -> Path:
    root = ROOT / f"Pulumi.{stack}.yaml"
    return root if root.exists() else ROOT / "examples" / f"{stack}.yaml"


def settings(stack: str):
    config = (yaml.safe_load(stack_file(stack).read_text()) or {}).get("config", {})
    values, providers = {}, {}
    for key, value in config.items():
        namespace, _, name = key.partition(":")
        text = (
            json.dumps(value)
            if isinstance(value, (list, dict))
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        if namespace == "llm":
            values[name] = text
        else:
            providers.setdefault(namespace, {})[name] = text
    return parse(from_mapping(values, "llm", (), providers), stack)


def main(argv: list[str]) -> int:
    print("| stack | target | modelled minutes | goal | critical path |")
    print("| --- | --- | --- | --- | --- |")
    details = []
    for stack in STACKS:
        plan = timeline(settings(stack))
        goal = GOALS.get(stack)
        verdict = "" if goal is None else (f"<= {goal} (met)" if plan.total <= goal else f"<= {goal} (**missed**)")
        path = " → ".join(t.name for t in plan.critical_path() if t.minutes > 0)
        print(f"| {stack} | {plan.target} | {plan.total:.1f} | {verdict} | {path} |")
        details.append((stack, plan))
    if "--paths" in argv:
        for stack, plan in details:
            print(f"\n{stack}:")
            for task in plan.critical_path():
                print(f"  {plan.start(task.name):6.1f} +{task.minutes:5.1f}  {task.name}  [{task.why}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
