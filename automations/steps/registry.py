"""The kinds of series step, by name: the one place a new kind plugs in.

A kind checks its part of the step graph (`clean`: the step's own fields; its pointers to the
next steps are checked by the graph), names those pointers (`exits`), and runs a group of
enrollments standing on one step of one version at once (`run`, set-based: one query for the
group, never one per contact). A step that waits says so (`waits`): the graph refuses a loop
with no waiting step in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audiences.segments.values import RuleErrors

if TYPE_CHECKING:
    from automations.engine.walk import RunContext, Walker
    from esp.models import Workspace


@dataclass(frozen=True)
class Go:
    """Go on to the step `next` now (None: the series is done for this enrollment)."""

    next: str | None
    outcome: str
    reason: str = ""
    branch: str = ""
    message_id: int | None = None


@dataclass(frozen=True)
class Wait:
    """Stay on this step until `until` (or until the awaited event arrives, when named); the
    step runs again then, and knows it by `Walker.waiting`."""

    until: dt.datetime
    reason: str = ""
    wait_event: str = ""
    wait_key: str = ""
    # Trace it (the first time a step starts waiting) or not (a wait that is re-armed).
    trace: bool = True


@dataclass(frozen=True)
class End:
    state: str
    outcome: str
    reason: str = ""
    message_id: int | None = None


Result = Go | Wait | End


@dataclass(frozen=True)
class StepKind:
    name: str
    label: Any
    # The step's own keys besides "key", "type", "name" and its exits.
    fields: frozenset[str]
    # The names of the keys that point at next steps ("next"; "yes"/"no"; split branches are
    # listed by `exits`).
    clean: Callable[[dict[str, Any], CleanContext, str, RuleErrors], dict[str, Any]]
    exits: Callable[[dict[str, Any]], list[tuple[str, str | None]]]
    run: Callable[[dict[str, Any], list[Walker], RunContext], dict[int, Result]]
    waits: bool = False
    describe: Callable[[dict[str, Any]], str] = field(default=lambda step: "")


@dataclass
class CleanContext:
    """What checking a version needs: the workspace, and what the steps name that must exist
    in it (templates, lists) read once."""

    workspace: Workspace
    series_kind: str = ""
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, name: str, load: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = load()
        return self._cache[name]


STEP_KINDS: dict[str, StepKind] = {}


def register_step_kind(kind: StepKind) -> StepKind:
    if kind.name in STEP_KINDS and STEP_KINDS[kind.name] is not kind:
        raise ValueError(f"a step kind named {kind.name!r} is registered already")
    STEP_KINDS[kind.name] = kind
    return kind


def next_exit(step: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [("next", step.get("next"))]


def no_exit(step: dict[str, Any]) -> list[tuple[str, str | None]]:
    return []


def yes_no_exits(step: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [("yes", step.get("yes")), ("no", step.get("no"))]
