"""Rules the clouds enforce and the SDKs do not: the mock provider refuses a resource the way the cloud would.

Each rule names the resource type it judges, the source of the rule (a URL, or a repository path at a commit)
and a check that returns why the cloud would refuse the resource, or None. `tests/harness.py` runs every
registration through `check_registration` before the mock accepts it, every invoke (data source) through
`check_invoke` before the mock answers it, and the whole run through `check_run` once the program has
finished (for rules across resources: "X exists when Y does", "X depends on Y"), so every stack, in every
test, is held to every rule.

Modules per cloud (alibaba.py, gcp.py, kubernetes.py) register their rules with `@rule` / `@run_rule` /
`@invoke_rule`;
`tests/test_cloud_rules.py` shows each rule refusing what it should.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Optional

from pulumi.output import Unknown


class CloudRefusal(Exception):
    """What the cloud's API would have answered with an error."""


@dataclass(frozen=True)
class Candidate:
    """A resource as it is registered: what a rule judges."""

    type: str
    name: str
    inputs: dict
    dependencies: tuple[str, ...]  # URNs
    parent: str


@dataclass(frozen=True)
class InvokeCandidate:
    """A data-source call (invoke) as the program makes it: what an invoke rule judges."""

    token: str
    args: dict
    preview: bool
    disabled_prerequisites: frozenset[str] = frozenset()  # APIs a test turned off that are normally on


@dataclass(frozen=True)
class Rule:
    resource_types: tuple[str, ...]  # empty: every type
    source: str
    check: Callable[[Candidate, Any], Optional[str]]  # (candidate, the run so far) -> why refused, or None


@dataclass(frozen=True)
class RunRule:
    source: str
    check: Callable[[Any], Iterable[str]]  # (the finished run) -> every refusal


@dataclass(frozen=True)
class InvokeRule:
    source: str
    check: Callable[[InvokeCandidate, Any], Optional[str]]  # (the call, the run so far) -> why refused, or None


RULES: list[Rule] = []
RUN_RULES: list[RunRule] = []
INVOKE_RULES: list[InvokeRule] = []


def rule(*resource_types: str, source: str) -> Callable:
    def register(check: Callable[[Candidate, Any], Optional[str]]) -> Callable:
        RULES.append(Rule(tuple(resource_types), source, check))
        return check

    return register


def run_rule(source: str) -> Callable:
    def register(check: Callable[[Any], Iterable[str]]) -> Callable:
        RUN_RULES.append(RunRule(source, check))
        return check

    return register


def invoke_rule(source: str) -> Callable:
    def register(check: Callable[[InvokeCandidate, Any], Optional[str]]) -> Callable:
        INVOKE_RULES.append(InvokeRule(source, check))
        return check

    return register


def check_invoke(call: InvokeCandidate, run: Any) -> Optional[str]:
    """Why the cloud would fail this call (the mock then fails it as the provider would), or None."""
    for each in INVOKE_RULES:
        why = each.check(call, run)
        if why:
            return f"{call.token}: {why} (cloud rule: {each.source})"
    return None


def check_registration(candidate: Candidate, run: Any) -> None:
    for each in RULES:
        if each.resource_types and candidate.type not in each.resource_types:
            continue
        why = each.check(candidate, run)
        if why:
            raise CloudRefusal(f"{candidate.type} {candidate.name}: {why} (cloud rule: {each.source})")


def check_run(run: Any) -> None:
    refusals = [f"{why} (cloud rule: {each.source})" for each in RUN_RULES for why in each.check(run)]
    if refusals:
        raise CloudRefusal("; ".join(refusals))


def known(value: Any) -> bool:
    """False for a value unknown at preview (the mock engine's placeholder, or an output of a resource not created
    yet, such as its id)."""
    return value is not None and not isinstance(value, Unknown) and not (isinstance(value, str) and value == UNKNOWN)


UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN


# Register the rules of every cloud.
from cloud_rules import alibaba, gcp, kubernetes  # noqa: E402,F401
