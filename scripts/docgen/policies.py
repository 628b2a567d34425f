"""docs/reference/policies.md: the policy pack's policies (policy/llm_policies.py), name, level and rule."""

from __future__ import annotations

import sys
from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


def render() -> str:
    if str(POLICY_DIR) not in sys.path:
        sys.path.insert(0, str(POLICY_DIR))
    from llm_policies import POLICIES  # policy/ is its own directory, as the Pulumi CLI runs it

    lines = [
        "# Policy pack",
        "",
        "Generated from `policy/llm_policies.py` by `scripts/docs.py`; do not edit by hand.",
        "",
        "The policy pack `llm-guardrails` (Pulumi CrossGuard, Python) checks every resource of a preview or an "
        "update run with `--policy-pack policy`. A mandatory policy's violation stops the update; an advisory "
        "one is reported. See [CI and the policy pack](../ci.md) for how to run it.",
        "",
        "| policy | level | rule |",
        "| --- | --- | --- |",
    ]
    for policy in POLICIES:
        level = str(policy.enforcement_level.value if policy.enforcement_level else "").lower()
        lines.append(f"| `{policy.name}` | {level} | {policy.description} |")
    return "\n".join(lines) + "\n"
