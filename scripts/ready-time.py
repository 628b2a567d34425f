#!/usr/bin/env python3
"""Print, for every example stack, the modelled minutes to a serving API and its critical path (core/timeline.py).

    .venv/bin/python scripts/ready-time.py            # a Markdown table, as in the README (summarised) and docs
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
from core.ready_time import GOALS, VARIANTS, timeline  # noqa: E402

STACKS = ("dev", "prod", "acs", "acs-r1", "ack", "ack-edge", "gke", "kubernetes")


def stack_file(stack: str) -> Path:
    root = ROOT / f"Pulumi.{stack}.yaml"
    return root if root.exists() else ROOT / "examples" / f"{stack}.yaml"


def settings(stack: str, overrides: dict | None = None):
    """The stack file's config, plus `overrides` as `pulumi config set --path` keys of the project (llm:)."""
    config = (yaml.safe_load(stack_file(stack).read_text()) or {}).get("config", {})
    for path, value in (overrides or {}).items():
        top, *rest = path.split(".")
        if not rest:
            config[f"llm:{top}"] = value
            continue
        node = config.setdefault(f"llm:{top}", {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value
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
    rows = [(stack, stack, {}, GOALS.get(stack)) for stack in STACKS]
    rows += [(name, stack, overrides, goal) for name, (stack, overrides, goal) in VARIANTS.items()]
    for name, stack, overrides, goal in rows:
        plan = timeline(settings(stack, overrides))
        verdict = "" if goal is None else (f"<= {goal} (met)" if plan.total <= goal else f"<= {goal} (**missed**)")
        path = " → ".join(t.name for t in plan.critical_path() if t.minutes > 0)
        print(f"| {name} | {plan.target} | {plan.total:.1f} | {verdict} | {path} |")
        details.append((name, plan))
    if "--paths" in argv:
        for stack, plan in details:
            print(f"\n{stack}:")
            for task in plan.critical_path():
                print(f"  {plan.start(task.name):6.1f} +{task.minutes:5.1f}  {task.name}  [{task.why}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
