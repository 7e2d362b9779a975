"""Edits the series builder makes to a draft's step graph: insert a step on an edge, delete,
duplicate, move (one step, or a branching step with its branches), change a step's settings.

Pure functions on the steps JSON (see automations/steps/graph.py): each takes the graph and
returns a new one, never touching the database, so they are tested alone and the service
(automations/editing.py) only loads, applies, records the undo and saves.

A place in the tree is an `Edge`: the pointer `exit` of step `source` ("next", "yes", "no",
"branches[1].next"), or the series' start. Inserting on an edge puts the new step between the
pointer and what it pointed at; that continuation goes on the new step's first exit (a new
condition's "yes", as the flow builders of the big ESPs do), its other exits end. Branches never
merge back, so deleting or moving never has to reconnect two columns: what a deleted branch held
alone goes with it.

Every refusal is an `EditError` with a sentence for the marketer.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from automations.steps import STEP_KINDS
from automations.steps.graph import COMMON_FIELDS, MAX_STEPS

START = "start"
_BRANCH_EXIT = re.compile(r"^branches\[(\d+)\]\.next$")
# How a new step's key starts, by kind: short and readable in traces and URLs.
KEY_PREFIX = {
    "send": "email",
    "wait": "wait",
    "wait_until": "wait-until",
    "wait_for_event": "wait-for",
    "condition": "if",
    "split": "split",
    "update_contact": "update",
    "webhook": "webhook",
    "notify": "notify",
    "exit": "exit",
}
# A new step's settings before the marketer fills them in. Some are left empty on purpose (an
# email's template, the event to wait for): the builder shows them as "to fill in" and publish
# refuses them until they are.
NEW_STEP: dict[str, dict[str, Any]] = {
    "send": {},
    "wait": {"amount": 1, "unit": "days"},
    "wait_until": {"time": "10:00"},
    "wait_for_event": {"event": "", "timeout_amount": 1, "timeout_unit": "days"},
    "condition": {},
    "split": {"branches": [{"percent": 50, "next": None}, {"percent": 50, "next": None}]},
    "update_contact": {"action": "tag", "tag": ""},
    "webhook": {"url": ""},
    "notify": {"to": "owners", "subject": "", "text": ""},
    "exit": {},
}


class EditError(ValueError):
    """An edit that cannot be made, with the sentence that says why."""


@dataclass(frozen=True)
class Edge:
    source: str | None  # None: the series' start
    exit: str = START

    @classmethod
    def parse(cls, text: str) -> Edge:
        """ "welcome:next", ":start" — as the builder's forms post them."""
        source, sep, exit_name = (text or "").partition(":")
        if not sep or not exit_name:
            raise EditError(_("Choose where to put the step."))
        return cls(source or None, exit_name)

    def __str__(self) -> str:
        return f"{self.source or ''}:{self.exit}"


def _steps_list(steps: dict[str, Any]) -> list[dict[str, Any]]:
    listed = steps.get("steps")
    return listed if isinstance(listed, list) else []


def _by_key(steps: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in _steps_list(steps) if isinstance(s, dict) and isinstance(s.get("key"), str)}


def exits_of(step: dict[str, Any]) -> list[tuple[str, str | None]]:
    kind = STEP_KINDS.get(step.get("type", ""))
    return kind.exits(step) if kind is not None else []


def _branches(step: dict[str, Any]) -> bool:
    names = [name for name, _target in exits_of(step)]
    return bool(names) and names != ["next"]


def start_of(steps: dict[str, Any]) -> str | None:
    start = steps.get("start")
    if isinstance(start, str):
        return start
    listed = _steps_list(steps)
    return listed[0]["key"] if listed else None


def target(steps: dict[str, Any], edge: Edge) -> str | None:
    if edge.source is None:
        return start_of(steps)
    step = _step(steps, edge.source)
    for name, pointed in exits_of(step):
        if name == edge.exit:
            return pointed
    raise EditError(_("That place in the series no longer exists: the page is out of date, reload it."))


def _point(steps: dict[str, Any], edge: Edge, key: str | None) -> None:
    if edge.source is None:
        steps["start"] = key
    else:
        _set_exit(_step(steps, edge.source), edge.exit, key)


def _set_exit(step: dict[str, Any], name: str, key: str | None) -> None:
    found = _BRANCH_EXIT.match(name)
    if found:
        step["branches"][int(found.group(1))]["next"] = key
    else:
        step[name] = key


def _step(steps: dict[str, Any], key: str) -> dict[str, Any]:
    step = _by_key(steps).get(key)
    if step is None:
        raise EditError(
            _("The step %(key)s is gone: someone changed the draft meanwhile; reload the page.") % {"key": key}
        )
    return step


def edges_into(steps: dict[str, Any], key: str) -> list[Edge]:
    """Every pointer at `key` (the start included)."""
    found = [Edge(None)] if start_of(steps) == key else []
    for step in _steps_list(steps):
        for name, pointed in exits_of(step):
            if pointed == key:
                found.append(Edge(step["key"], name))
    return found


def reachable(steps: dict[str, Any]) -> set[str]:
    by_key = _by_key(steps)
    start = start_of(steps)
    seen: set[str] = set()
    todo = [start] if start in by_key else []
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        todo.extend(t for _n, t in exits_of(by_key[key]) if t in by_key and t not in seen)
    return seen


def _drop_orphans(steps: dict[str, Any], reached_before: set[str]) -> None:
    """Remove the steps an edit cut off: reached before it, reached no more (a deleted branch).
    Steps nothing reached before stay — the marketer sees them as unreached and decides."""
    now = reachable(steps)
    steps["steps"] = [s for s in _steps_list(steps) if s.get("key") not in reached_before - now]


def new_key(steps: dict[str, Any], kind: str) -> str:
    taken = set(_by_key(steps))
    prefix = KEY_PREFIX.get(kind, re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "step")
    number = 1
    while f"{prefix}-{number}" in taken:
        number += 1
    return f"{prefix}-{number}"


def _cleared_exits(step: dict[str, Any]) -> dict[str, Any]:
    """The step with every pointer emptied (a copy being placed somewhere new)."""
    for name, _target in exits_of(step):
        _set_exit(step, name, None)
    return step


def _place(steps: dict[str, Any], edge: Edge, step: dict[str, Any]) -> None:
    """Put `step` (exits cleared) on `edge`: the edge's old target goes on its first exit."""
    following = target(steps, edge)
    exits = exits_of(step)
    if not exits and following is not None:
        raise EditError(_("An exit ends the path, so it can only go at the end of one (after the last step)."))
    if exits:
        _set_exit(step, exits[0][0], following)
    # List order is what flat views (and the JSON) show: put it right after its source.
    listed = _steps_list(steps)
    index = next((i + 1 for i, s in enumerate(listed) if s.get("key") == edge.source), 0)
    listed.insert(index, step)
    steps["steps"] = listed
    _point(steps, edge, step["key"])


def _copy(steps: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(steps) if isinstance(steps, dict) else {}
    copied.setdefault("steps", [])
    copied.setdefault("start", None)
    return copied


def _room(steps: dict[str, Any]) -> None:
    if len(_steps_list(steps)) >= MAX_STEPS:
        raise EditError(_("A series has at most %(max)d steps.") % {"max": MAX_STEPS})


def insert_step(steps: dict[str, Any], edge: Edge, kind: str) -> tuple[dict[str, Any], str]:
    if kind not in STEP_KINDS:
        raise EditError(_("Choose a kind of step."))
    steps = _copy(steps)
    _room(steps)
    key = new_key(steps, kind)
    _place(steps, edge, _cleared_exits({"key": key, "type": kind, **copy.deepcopy(NEW_STEP.get(kind, {}))}))
    return steps, key


def duplicate_step(steps: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
    """A copy of the step's settings, right under it (on its first exit)."""
    steps = _copy(steps)
    _room(steps)
    original = _step(steps, key)
    exits = exits_of(original)
    if not exits:
        raise EditError(_("An exit step cannot be duplicated: nothing can follow it."))
    twin = _cleared_exits(copy.deepcopy(original))
    twin["key"] = new_key(steps, original["type"])
    _place(steps, Edge(key, exits[0][0]), twin)
    return steps, twin["key"]


def delete_step(steps: dict[str, Any], key: str, keep: str | None = None) -> dict[str, Any]:
    """Remove the step; what pointed at it points at what followed it. A branching step keeps
    one branch (`keep`, its first by default) in its place; the others go with it."""
    steps = _copy(steps)
    step = _step(steps, key)
    before = reachable(steps)
    exits = exits_of(step)
    if keep is not None and keep not in {name for name, _t in exits}:
        raise EditError(_("Choose which branch to keep."))
    following = dict(exits).get(keep) if keep is not None else (exits[0][1] if exits else None)
    if following == key:
        following = None
    for edge in edges_into(steps, key):
        _point(steps, edge, following)
    steps["steps"] = [s for s in _steps_list(steps) if s.get("key") != key]
    _drop_orphans(steps, before - {key})
    if not steps["steps"]:
        steps["start"] = None
    return steps


def _subtree(steps: dict[str, Any], key: str) -> set[str]:
    by_key = _by_key(steps)
    seen: set[str] = set()
    todo = [key]
    while todo:
        current = todo.pop()
        if current in seen or current not in by_key:
            continue
        seen.add(current)
        todo.extend(t for _n, t in exits_of(by_key[current]) if t is not None)
    return seen


def move_step(steps: dict[str, Any], key: str, edge: Edge) -> dict[str, Any]:
    """Move a step to another place. A plain step leaves its column closed behind it; a
    branching step takes its branches along and may only go where a column ends."""
    steps = _copy(steps)
    step = _step(steps, key)
    if edge.source == key or target(steps, edge) == key:
        return steps  # right after itself, or onto its own incoming pointer: where it is
    branching = _branches(step)
    if branching:
        if edge.source is not None and edge.source in _subtree(steps, key):
            raise EditError(_("A step cannot be moved into its own branches."))
        if target(steps, edge) is not None:
            raise EditError(_("A step with branches can only be moved to the end of a path."))
    exits = exits_of(step)
    following = None if branching or not exits else exits[0][1]
    for into in edges_into(steps, key):
        _point(steps, into, following)
    steps["steps"] = [s for s in _steps_list(steps) if s.get("key") != key]
    if branching:
        listed = _steps_list(steps)
        listed.insert(next((i + 1 for i, s in enumerate(listed) if s.get("key") == edge.source), 0), step)
        _point(steps, edge, key)
    else:
        _place(steps, edge, _cleared_exits(step))
    return steps


def move_up(steps: dict[str, Any], key: str) -> dict[str, Any]:
    """One place up its column: above the step before it (out of a branch, above the step
    that branches, when it is a branch's first)."""
    _step(steps, key)
    into = edges_into(steps, key)
    if len(into) != 1 or into[0].source is None:
        raise EditError(_("This step is already at the top."))
    parent = into[0].source
    above = edges_into(steps, parent)
    if len(above) != 1:
        raise EditError(_("This step cannot move up: the step above it is reached from several places."))
    return move_step(steps, key, above[0])


def move_down(steps: dict[str, Any], key: str) -> dict[str, Any]:
    """One place down its column: below the step after it (into the first branch, when the
    step after it branches)."""
    step = _step(steps, key)
    exits = exits_of(step)
    if _branches(step):
        raise EditError(_("A step with branches moves with its branches: drag it to the end of a path."))
    following = exits[0][1] if exits else None
    if following is None:
        raise EditError(_("This step is already at the bottom."))
    below = exits_of(_step(steps, following))
    if not below:
        raise EditError(_("Nothing can follow an exit step."))
    return move_step(steps, key, Edge(following, below[0][0]))


def update_step(steps: dict[str, Any], key: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Replace the step's own settings (its name and kind's fields); its key, kind and
    pointers stay. A split's branches are given without pointers: each keeps its column by
    position, a new branch starts empty, and a removed branch's steps go with it."""
    steps = _copy(steps)
    step = _step(steps, key)
    before = reachable(steps)
    kept = {k: v for k, v in step.items() if k in COMMON_FIELDS - {"name"} or k in dict(exits_of(step))}
    if "branches" in settings and isinstance(settings["branches"], list):
        old: list[Any] = step["branches"] if isinstance(step.get("branches"), list) else []
        settings = {
            **settings,
            "branches": [
                {**branch, "next": old[i].get("next") if i < len(old) and isinstance(old[i], dict) else None}
                for i, branch in enumerate(settings["branches"])
            ],
        }
    step.clear()
    step.update({**settings, **kept})
    if not step.get("name"):
        step.pop("name", None)
    _drop_orphans(steps, before)
    return steps
