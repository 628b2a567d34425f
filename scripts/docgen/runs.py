"""The example stacks, each run once under the test harness's mocks, shared by every generated page."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import harness  # tests/harness.py (scripts/docs.py puts tests/ on the path)

# One example stack shows each target in the diagrams and the target pages.
TARGET_EXAMPLES = {
    "ecs": "dev",
    "acs": "acs",
    "ack": "ack",
    "ack-edge": "ack-edge",
    "gke": "gke",
    "kubernetes": "kubernetes",
}
# Outputs that only some settings export, shown by running each example again with them (README-documented
# addresses from the RFC 5737 documentation range; `kp` is a key pair name the mocks accept).
# A public endpoint serves HTTPS (access.tls): the pem source, with the harness's PEM-shaped test values.
PUBLIC = {"access.public": True, "access.allowedCidrs": ["203.0.113.0/24"], **harness.PEM_TLS}
SSH = {"access.sshCidrs": ["203.0.113.0/24"], "access.sshKeyPair": "kp"}
VARIANTS = {
    "access.public": PUBLIC,
    "access.sshCidrs": SSH,
}
# Which variants each target accepts (access.sshCidrs opens SSH to the ecs host or the acs jump host only).
VARIANTS_OF = {
    "ecs": ("access.public", "access.sshCidrs"),
    "acs": ("access.public", "access.sshCidrs"),
    "ack": ("access.public",),
    "ack-edge": ("access.public",),
    "gke": ("access.public",),
    "kubernetes": ("access.public",),
}


@dataclass(frozen=True)
class ExampleRun:
    stack: str
    target: str
    run: harness.Run
    variant: str = ""  # "" for the stack file as committed, else the VARIANTS key it adds


def _run(stack: str, overrides: dict | None = None) -> harness.Run:
    try:
        return harness.run_stack(stack, overrides)
    finally:
        harness.reset_runtime()


@functools.cache
def examples() -> tuple[ExampleRun, ...]:
    """Every example stack (harness.EXAMPLE_STACKS) as committed."""
    found = []
    for stack in harness.EXAMPLE_STACKS:
        run = _run(stack)
        found.append(ExampleRun(stack, str(run.outputs["target"]), run))
    return tuple(found)


@functools.cache
def variants() -> tuple[ExampleRun, ...]:
    """Each target's example again with each setting that adds outputs."""
    found = []
    for target, stack in TARGET_EXAMPLES.items():
        for variant in VARIANTS_OF[target]:
            overrides = {**VARIANTS[variant], **(PUBLIC if variant == "access.sshCidrs" else {})}
            found.append(ExampleRun(stack, target, _run(stack, overrides), variant))
    return tuple(found)


def example_of(target: str) -> ExampleRun:
    return next(e for e in examples() if e.stack == TARGET_EXAMPLES[target])
