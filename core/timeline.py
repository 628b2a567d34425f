"""How long `pulumi up` takes until the API answers: the stack's slow steps as a graph, its critical path.

Each target's `pulumi up` is a graph of slow steps (a cluster, a node pool, the model import, image pulls, the
engine's load) with the order the program gives them. The time to a serving API is the longest path through that
graph; its steps are the critical path. The minutes of each step come from core/durations.py (each figure sourced,
derived or assumed), so a change that overlaps two steps, or makes one faster, shows up here and in the
`expectedReadyMinutes` output, and every deadline the program sets can be checked against the step it waits for
(tests/test_timeline.py).

Nothing here was measured on a cloud: it is a model, as good as its figures.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

API = "api"  # the goal every timeline ends in: the API answers with the key


@dataclass(frozen=True)
class Task:
    name: str
    minutes: float
    after: tuple[str, ...] = ()
    why: str = ""  # what the minutes are made of, with the figures' sources


@dataclass(frozen=True)
class Timeline:
    """A graph of tasks; `api` is the goal. Every name in `after` must be a task of the graph."""

    target: str
    tasks: tuple[Task, ...]

    def __post_init__(self) -> None:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names repeat: {names}")
        missing = {a for t in self.tasks for a in t.after} - set(names)
        if missing or API not in names:
            raise ValueError(f"unknown predecessors {sorted(missing)} or no {API!r} task")
        for task in self.tasks:  # a cycle would make finish() recurse forever
            self._finish(task.name, ())

    @functools.cached_property
    def by_name(self) -> Mapping[str, Task]:
        return {t.name: t for t in self.tasks}

    def _finish(self, name: str, seen: tuple[str, ...]) -> float:
        if name in seen:
            raise ValueError(f"cycle through {name}")
        task = self.by_name[name]
        return max((self._finish(a, (*seen, name)) for a in task.after), default=0.0) + task.minutes

    def start(self, name: str) -> float:
        return max((self.finish(a) for a in self.by_name[name].after), default=0.0)

    def finish(self, name: str) -> float:
        return self._finish(name, ())

    @property
    def total(self) -> float:
        return self.finish(API)

    def critical_path(self) -> list[Task]:
        """The chain of tasks that ends last: each step's latest-finishing predecessor, back from `api`."""
        path, name = [], API
        while True:
            task = self.by_name[name]
            path.append(task)
            if not task.after:
                return path[::-1]
            name = max(task.after, key=self.finish)

    def span(self, first: str, last: str = API) -> float:
        """Minutes from the start of `first` to the end of `last`: what a resource created at `first`'s start
        and waiting for `last` must allow."""
        return self.finish(last) - self.start(first)

    def output(self) -> dict[str, object]:
        """The `expectedReadyMinutes` stack output."""
        return {
            "total": round(self.total, 1),
            "criticalPath": [
                {"step": t.name, "startsAt": round(self.start(t.name), 1), "minutes": round(t.minutes, 1)}
                for t in self.critical_path()
                if t.minutes > 0 or t.name == API
            ],
            "model": "core/timeline.py (figures: core/durations.py; a model, not a measurement)",
        }

    def summary(self) -> str:
        """One line for `pulumi preview` and the scripts' table."""
        steps = " -> ".join(f"{t.name} {t.minutes:.1f}" for t in self.critical_path() if t.minutes > 0)
        return f"{self.target}: about {self.total:.0f} min to a serving API; critical path: {steps}"


def chain(target: str, steps: Iterable[tuple[str, float, str]]) -> Timeline:
    """A timeline of steps that run one after another, ending in `api`."""
    tasks, previous = [], ()
    for name, minutes, why in steps:
        tasks.append(Task(name, minutes, previous, why))
        previous = (name,)
    tasks.append(Task(API, 0.0, previous, "the API answers"))
    return Timeline(target, tuple(tasks))
