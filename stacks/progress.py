"""What `pulumi up` is waiting for, said while it waits.

A long step (a host's first boot, the model import, a node pool, the engine's load) holds one row of the update
for minutes to an hour. When the step starts, that is when the values it waits for are known (the resources before
it exist), the program logs on that row what it waits for, the modelled minutes (core/ready_time.py) and the
exact command that follows its progress, so the user sees them in the update's output without reading the docs.
A preview logs none of it (the values are unknown there): it shows the whole estimate instead (stacks/__init__.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from core.config.settings import Settings
from core.ready_time import timeline


def modelled_minutes(settings: Settings, *steps: str) -> float:
    """The modelled minutes of the named steps of the stack's timeline (core/ready_time.py); unknown names count 0."""
    tasks = timeline(settings).by_name
    return sum(tasks[name].minutes for name in steps if name in tasks)


def message(waiting_for: str, minutes: float, follow: str) -> str:
    return f"waiting for {waiting_for} (modelled {minutes:.0f} min); follow it with: {follow}"


def announce(
    resource: pulumi.Resource,
    waiting_for: str,
    minutes: float,
    follow: pulumi.Input[str],
    starts_after: Sequence[pulumi.Input[object]],
) -> None:
    """Log on `resource`'s row, once every value in `starts_after` is known, what it waits for and how to follow it.

    `follow` must carry no secret: it is printed as is.
    """
    if not starts_after:
        raise ValueError("announce() needs the values the step starts after, or it would log at preview")

    def say(values: list[object]) -> None:
        pulumi.log.info(message(waiting_for, minutes, str(values[-1])), resource=resource)

    pulumi.Output.all(*starts_after, follow).apply(say)
