"""docs/reference/ready-time.md and scripts/ready-time.py: every example stack's modelled minutes to a serving API,
its critical path, and the duration model's figures (core/durations.py), each with its mark and source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

STACKS = ("dev", "prod", "acs", "acs-r1", "ack", "ack-edge", "gke", "kubernetes")
KINDS = {"S": "sourced", "D": "derived from sourced figures", "A": "assumed"}


@dataclass(frozen=True)
class Row:
    name: str
    plan: Any  # core.timeline.Timeline
    goal: Optional[float]

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return ""
        return f"<= {self.goal:g} (met)" if self.plan.total <= self.goal else f"<= {self.goal:g} (**missed**)"

    @property
    def path(self) -> str:
        return " → ".join(t.name for t in self.plan.critical_path() if t.minutes > 0)


def rows() -> list[Row]:
    """Every example stack, then the variants (a stack with some keys set), with their goals."""
    from harness import settings_for  # a stack file and `--path` keys parsed as the program does, no Pulumi run

    from core.ready_time import GOALS, VARIANTS, timeline

    found = [Row(stack, timeline(settings_for(stack)), GOALS.get(stack)) for stack in STACKS]
    found += [Row(name, timeline(settings_for(stack, keys)), goal) for name, (stack, keys, goal) in VARIANTS.items()]
    return found


def table(found: list[Row]) -> list[str]:
    lines = ["| stack | target | modelled minutes | goal | critical path |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.name} | {r.plan.target} | {r.plan.total:.1f} | {r.verdict} | {r.path} |" for r in found]
    return lines


def figures() -> list[tuple[str, Any]]:
    from core import durations

    return [(name, value) for name, value in vars(durations).items() if isinstance(value, durations.Figure)]


def quantity(figure: Any) -> str:
    """A figure's value with its unit, as the tables show it."""
    return f"{figure.value:.3g} {figure.unit}"


def to_measure(found: list[Row]) -> list[tuple[str, Any, list[str]]]:
    """The assumed figures on the critical path of each row that misses its goal, with those rows: what a run on a
    cloud would have to measure to settle them. A figure is on a step when its source is in the step's `why`."""
    assumed = [(name, figure) for name, figure in figures() if figure.kind == "A"]
    missed = [r for r in found if r.goal is not None and r.plan.total > r.goal]
    result = []
    for name, figure in assumed:
        on = [r.name for r in missed if any(t.minutes > 0 and figure.source in t.why for t in r.plan.critical_path())]
        if on:
            result.append((name, figure, on))
    return result


def render() -> str:
    from core import durations
    from core.nat_egress import PER_EIP_MAX_MBPS, download_mbps

    found = rows()
    pull = download_mbps(1000, int(durations.PULL_CONNECTIONS.value))
    host_pull = download_mbps(1000, int(durations.HOST_PULL_CONNECTIONS.value))
    lines = [
        "# Time to a serving API",
        "",
        "Generated from `core/ready_time.py` and `core/durations.py` by `scripts/docs.py`; do not edit by hand.",
        "`.venv/bin/python scripts/ready-time.py --paths` prints the same table and every step of each critical path.",
        "",
        "Each target's `pulumi up` is modelled as a timeline of its slow steps, in the order its stack imposes them,",
        "from the figures below; the same figures size every readiness timeout, probe window and Job deadline (with",
        "margins), and each stack's `expectedReadyMinutes` output and the first line of its `pulumi up` give its",
        "estimate. A model, not a measurement: nothing here was timed on a cloud.",
        "",
        "## Example stacks",
        "",
        *table(found),
        "",
        "The variants set a few keys on an example stack: `ecs.preparedImage.id` (a prepared host image),",
        "`ecs.weights.source: oss` (the weights already in a bucket of the region), and `modelStore.load: stream`",
        "with an engine image that ships the Run:ai streamer ([Loading the weights](../loading.md)).",
        "",
        "## The NAT's EIPs",
        "",
        "On Alibaba everything public comes in through the NAT gateway. One of its EIPs carries at most",
        f'{PER_EIP_MAX_MBPS} Mbit/s (Alibaba\'s "FAQ about SNAT"), so above that `network.natBandwidthMbps` is spread',
        "over one EIP per 200 Mbit/s, and every SNAT entry lists them all (`core/nat_egress.py`). Billed by traffic",
        "(the default) each EIP is billed per GB sent, and inbound traffic is free: dev, acs, acs-r1 and ack set",
        "1000 Mbit/s, five EIPs. Without EIP affinity each connection picks one EIP, so a transfer of *c*",
        "connections over *n* EIPs is modelled at the EIPs it is expected to use, *n*(1 - (1 - 1/*n*)^*c*), each at",
        f"its share: a pull of 3 layers at once (containerd's and Docker's default) gets ~{pull:.0f} of 1000 Mbit/s,",
        f"the ecs host's Docker (8 layers at once) ~{host_pull:.0f}. The model assumes a pull's bytes spread over its",
        "layers; an image with one dominant layer pulls it at one EIP's rate. What was not checked is in",
        "[Limitations](../limitations.md).",
        "",
        "## What a run on a cloud would settle",
        "",
        "The goals the model misses rest on these assumed figures, which lie on their critical paths. A real",
        "`pulumi up` shows each of them; with the measured value in `core/durations.py`, `scripts/ready-time.py`",
        "gives the times again.",
        "",
        "| figure | assumed | on the critical path of | where a run shows it |",
        "| --- | --- | --- | --- |",
        *(
            f"| `{name}` | {quantity(figure)} | {'; '.join(on)} | {figure.measure.replace('|', '/')} |"
            for name, figure, on in to_measure(found)
        ),
        "",
        "## Figures",
        "",
        "Marks: " + "; ".join(f"{k} {v}" for k, v in KINDS.items()) + ".",
        "",
        "| figure | value | mark | source |",
        "| --- | --- | --- | --- |",
    ]
    for name, figure in figures():
        lines.append(f"| `{name}` | {quantity(figure)} | {figure.kind} | {figure.source.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
