"""A version's step graph checked as a whole.

    {"start": "welcome",
     "steps": [{"key": "welcome", "type": "send", "template": 12, "next": "pause"},
               {"key": "pause", "type": "wait", "amount": 2, "unit": "days", "next": "ordered"},
               {"key": "ordered", "type": "condition", "rules": {…}, "yes": null, "no": "nudge"}, …]}

Steps are listed top to bottom as the pages show them; each names the steps that follow by key
(`next`, `yes` / `no`, a split's branches), and an empty pointer ends the series for that
contact. Keys are stable: a new version keeps the keys of the steps it keeps, which is how
people already inside are mapped when the marketer asks for it.

Every problem is reported with a path naming the step and its field —
`steps[pause].amount` — never only the first one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from audiences.segments.values import RuleErrors
from automations.steps.registry import STEP_KINDS, CleanContext

MAX_STEPS = 200
MAX_BYTES = 256 * 1024
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
COMMON_FIELDS = frozenset({"key", "type", "name"})


def step_path(key: str | int) -> str:
    return f"steps[{key}]"


def validate_steps(raw: Any, ctx: CleanContext) -> dict[str, Any]:
    """The graph checked and normalised, or a ValidationError with every problem by path."""
    errors = RuleErrors()
    if not isinstance(raw, dict):
        raise ValidationError({"steps": [_("Expected an object with start and steps.")]})
    if len(json.dumps(raw, default=str)) > MAX_BYTES:
        raise ValidationError({"steps": [_("The steps are too large (at most 256 KB).")]})
    for unknown in sorted(set(raw) - {"start", "steps"}):
        errors.add(unknown, _("Unknown field %(field)r.") % {"field": unknown})
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        errors.add("steps", _("Expected a list of at least one step."))
        errors.raise_if_any()
        return {}
    if len(steps) > MAX_STEPS:
        errors.add("steps", _("At most %(max)d steps in a series.") % {"max": MAX_STEPS})
        errors.raise_if_any()
    cleaned_steps: list[dict[str, Any]] = []
    keys: set[str] = set()
    for index, step in enumerate(steps):
        cleaned = _clean_step(step, index, keys, ctx, errors)
        if cleaned is not None:
            cleaned_steps.append(cleaned)
            keys.add(cleaned["key"])
    start = raw.get("start")
    if not cleaned_steps:
        errors.raise_if_any()
    if start is None and cleaned_steps:
        start = cleaned_steps[0]["key"]
    if start not in keys:
        errors.add("start", _("%(key)r is not the key of a step.") % {"key": start})
    by_key = {step["key"]: step for step in cleaned_steps}
    for step in cleaned_steps:
        for name, target in STEP_KINDS[step["type"]].exits(step):
            if target is not None and target not in by_key:
                errors.add(f"{step_path(step['key'])}.{name}", _("%(key)r is not the key of a step.") % {"key": target})
    for step in cleaned_steps:
        exits = STEP_KINDS[step["type"]].exits(step)
        if len(exits) > 1 and all(target is None for _name, target in exits):
            errors.add(
                step_path(step["key"]),
                _("Every branch of this step is empty: add a step to a branch, or remove this step."),
            )
    if not errors and isinstance(start, str):
        _check_reachable(start, by_key, errors)
        _check_loops(by_key, errors)
    errors.raise_if_any()
    return {"start": start, "steps": cleaned_steps}


def _clean_step(step: Any, index: int, keys: set[str], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any] | None:
    if not isinstance(step, dict):
        errors.add(step_path(index), _("Expected a step: an object with key and type."))
        return None
    key = step.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        errors.add(
            f"{step_path(index)}.key",
            _("A step key is 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit."),
        )
        return None
    path = step_path(key)
    if key in keys:
        errors.add(f"{path}.key", _("Two steps have the key %(key)r.") % {"key": key})
        return None
    kind = STEP_KINDS.get(step.get("type"))  # type: ignore[arg-type]
    if kind is None:
        errors.add(
            f"{path}.type",
            _("%(type)r is not a kind of step; use one of: %(allowed)s.")
            % {"type": step.get("type"), "allowed": ", ".join(STEP_KINDS)},
        )
        return None
    exit_names = {name for name, _target in kind.exits(step)}
    for unknown in sorted(set(step) - COMMON_FIELDS - kind.fields - exit_names):
        errors.add(f"{path}.{unknown}", _("Unknown field %(field)r for a %(type)s step.") % {
            "field": unknown, "type": kind.name
        })  # fmt: skip
    name = step.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        errors.add(f"{path}.name", _("Expected a name of at most 200 characters."))
        name = ""
    cleaned: dict[str, Any] = {"key": key, "type": kind.name, **({"name": name.strip()} if name else {})}
    cleaned.update(kind.clean(step, ctx, path, errors))
    for exit_name, target in kind.exits(step):
        if target is not None and not isinstance(target, str):
            errors.add(f"{path}.{exit_name}", _("Expected the key of a step, or null to end."))
        elif exit_name in step:
            cleaned[exit_name] = target
    return cleaned


def _check_reachable(start: str, by_key: dict[str, dict[str, Any]], errors: RuleErrors) -> None:
    seen = {start}
    todo = [start]
    while todo:
        step = by_key[todo.pop()]
        for _name, target in STEP_KINDS[step["type"]].exits(step):
            if target is not None and target not in seen:
                seen.add(target)
                todo.append(target)
    for key in by_key:
        if key not in seen:
            errors.add(step_path(key), _("No step leads to this step."))


def _check_loops(by_key: dict[str, dict[str, Any]], errors: RuleErrors) -> None:
    """A cycle through steps that never wait would run forever in one tick: refuse it. Cycles
    with a wait in them are fine (a weekly reminder until the goal)."""
    moving = {key for key, step in by_key.items() if not STEP_KINDS[step["type"]].waits}
    graph = {key: [t for _n, t in STEP_KINDS[by_key[key]["type"]].exits(by_key[key]) if t in moving] for key in moving}
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(key: str) -> str | None:
        state[key] = 1
        for target in graph[key]:
            if state.get(target) == 1:
                return target
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[key] = 2
        return None

    for key in graph:
        if key not in state:
            found = visit(key)
            if found:
                errors.add(
                    step_path(found), _("This step is in a loop with no wait in it: add a wait step to the loop.")
                )
                return
