"""A second `pulumi up` with nothing changed changes nothing: the program sends the same inputs, dependencies and
options every time. Each example stack is built in two processes with different PYTHONHASHSEEDs (set and dict
orders, hash() values), and every resource's registration must come out the same, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness import EXAMPLE_STACKS, ROOT

# Run in a fresh interpreter: what one process registers for every example stack, as sorted JSON per URN.
_SNAPSHOT = """
import json, sys
sys.path[:0] = ["tests", "scripts", "."]
from harness import EXAMPLE_STACKS, run_stack, unwrap
found = {}
for name in EXAMPLE_STACKS:
    run = run_stack(name)
    for r in run.resources:
        found[r.urn] = json.dumps(
            [unwrap(r.inputs), sorted(r.dependencies), r.protect, r.retain_on_delete, r.custom_timeouts,
             r.ignore_changes, r.replace_on_changes, r.delete_before_replace, r.provider],
            sort_keys=True, default=str,
        )
    found[f"{name} outputs"] = json.dumps(run.outputs, sort_keys=True, default=str)
json.dump(found, sys.stdout)
"""


def _registrations(seed: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.Popen(
        [sys.executable, "-c", _SNAPSHOT], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def test_every_example_stack_registers_the_same_resources_in_every_process():
    first, second = _registrations("1"), _registrations("2")  # side by side: two cores
    outputs = [json.loads(p.communicate(timeout=300)[0]) for p in (first, second)]
    a, b = outputs
    assert len(a) > 9 * len(EXAMPLE_STACKS)
    assert set(a) == set(b)
    assert [urn for urn in a if a[urn] != b[urn]] == []
