"""What changed between two versions of a series' steps, in words: the steps added and removed,
and for each step kept (same key) which settings changed, the step as it was and as it is, and
where it now leads. Also which waits changed: the people standing on one may be moved onto the
new wait when the draft is published — a choice the marketer makes per wait.

Steps are matched by key, as the engine matches them when it moves people (automations/steps/graph.py:
keys are stable). Nothing here writes; the words come from automations/describe.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext_lazy

from audiences.segments.registry import RuleContext
from automations.describe import Names, StepView, exit_label, step_views
from automations.steps import STEP_KINDS

# The settings of the step kinds, in words for "changed: length, email".
FIELD_LABELS = {
    "amount": pgettext_lazy("a step's setting", "length"),
    "unit": pgettext_lazy("a step's setting", "length"),
    "template": pgettext_lazy("a step's setting", "email"),
    "subject": pgettext_lazy("a step's setting", "subject"),
    "event": pgettext_lazy("a step's setting", "event"),
    "where": pgettext_lazy("a step's setting", "event filters"),
    "key_property": pgettext_lazy("a step's setting", "matching property"),
    "timeout_amount": pgettext_lazy("a step's setting", "how long to wait"),
    "timeout_unit": pgettext_lazy("a step's setting", "how long to wait"),
    "rules": pgettext_lazy("a step's setting", "rules"),
    "events_since_entry": pgettext_lazy("a step's setting", "events since entry"),
    "email": pgettext_lazy("a step's setting", "email opened or clicked"),
    "branches": pgettext_lazy("a step's setting", "branches"),
    "time": pgettext_lazy("a step's setting", "time of day"),
    "weekdays": pgettext_lazy("a step's setting", "weekdays"),
    "attribute": pgettext_lazy("a step's setting", "date"),
    "offset_days": pgettext_lazy("a step's setting", "days before or after the date"),
    "anniversary": pgettext_lazy("a step's setting", "anniversary"),
    "to": pgettext_lazy("a step's setting", "recipient"),
    "text": pgettext_lazy("a step's setting", "text"),
    "action": pgettext_lazy("a step's setting", "action"),
    "tag": pgettext_lazy("a step's setting", "tag"),
    "field": pgettext_lazy("a step's setting", "field"),
    "value": pgettext_lazy("a step's setting", "value"),
    "list": pgettext_lazy("a step's setting", "list"),
    "url": pgettext_lazy("a step's setting", "URL"),
}
COMMON_FIELDS = frozenset({"key", "type", "name"})
# An exit inside a list of the step: a split's "branches[1].next".
NESTED_EXIT = re.compile(r"^(\w+)\[(\d+)\]\.(\w+)$")


@dataclass(frozen=True)
class StepChange:
    """A step both versions have (same key) that differs."""

    key: str
    label: str
    name: str
    # The changed settings in words ("length", "email"); empty when only the name or where
    # the step leads changed.
    fields: list[str]
    # The step in words as it was and as it is (equal when its settings did not change).
    before: str
    after: str
    # Renamed, another kind of step, where it now leads.
    notes: list[str]


@dataclass(frozen=True)
class StepsDiff:
    added: list[StepView] = field(default_factory=list)
    removed: list[StepView] = field(default_factory=list)
    changed: list[StepChange] = field(default_factory=list)
    # "The series now starts at …", when the first step changed.
    start: str = ""
    # Keys of waiting steps kept with the same key and kind whose settings changed, in the
    # new version's order: the waits whose people may be moved onto the new wait.
    changed_waits: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.start)

    def change(self, key: str) -> StepChange | None:
        return next((change for change in self.changed if change.key == key), None)


def settings_of(step: dict[str, Any]) -> dict[str, Any]:
    """The step's own settings: without its key, kind, name and the pointers to next steps."""
    kind = STEP_KINDS.get(step.get("type", ""))
    settings = {name: value for name, value in step.items() if name not in COMMON_FIELDS}
    for exit_name, _target in kind.exits(step) if kind else []:
        nested = NESTED_EXIT.match(exit_name)
        if nested is None:
            settings.pop(exit_name, None)
            continue
        items = settings.get(nested[1])
        index = int(nested[2])
        if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
            items = list(items)
            items[index] = {k: v for k, v in items[index].items() if k != nested[3]}
            settings[nested[1]] = items
    return settings


def _exits(step: dict[str, Any]) -> dict[str, str | None]:
    kind = STEP_KINDS.get(step.get("type", ""))
    return dict(kind.exits(step)) if kind else {}


def _start(steps: dict[str, Any]) -> str | None:
    listed = steps.get("steps") or []
    start = steps.get("start")
    if start is None and listed:
        start = listed[0].get("key")
    return start if isinstance(start, str) else None


def _field_words(fields: list[str]) -> list[str]:
    words: list[str] = []
    for name in fields:
        label = str(FIELD_LABELS.get(name, name))
        if label not in words:
            words.append(label)
    return words


class _Describer:
    """Each step of one version in words, described once, only when the diff needs it."""

    def __init__(self, steps: dict[str, Any], names: Names, ctx: RuleContext | None) -> None:
        self.by_key = {step.get("key", ""): step for step in steps.get("steps") or [] if isinstance(step, dict)}
        self.names = names
        self.ctx = ctx
        self._views: dict[str, StepView] = {}

    def view(self, key: str) -> StepView:
        if key not in self._views:
            self._views[key] = step_views({"steps": [self.by_key[key]]}, self.names, self.ctx)[0]
        return self._views[key]

    def step_name(self, key: str | None) -> str:
        """A step as a pointer names it: its name, else what it does, with its key."""
        if key is None or key not in self.by_key:
            return _("a step that is not there (%(key)s)") % {"key": key}
        view = self.view(key)
        return f"{view.name or view.what} ({key})"

    def title(self, key: str | None) -> str:
        """Where a pointer leads, in words: "continues at Wait 1 day (pause)" or "ends the series"."""
        if key is None:
            return _("ends the series")
        return _("continues at %(step)s") % {"step": self.step_name(key)}


def _pointer_notes(key: str, old: _Describer, new: _Describer) -> list[str]:
    old_step, new_step = old.by_key[key], new.by_key[key]
    before, after = _exits(old_step), _exits(new_step)
    notes = []
    for name, target in after.items():
        label = exit_label(name, new_step)
        if name not in before:
            notes.append(_("%(exit)s (new): %(now)s") % {"exit": label, "now": new.title(target)})
        elif before[name] != target:
            notes.append(
                _("%(exit)s: now %(now)s; before, %(before)s")
                % {"exit": label, "now": new.title(target), "before": old.title(before[name])}
            )
    for name, target in before.items():
        if name not in after:
            notes.append(
                _("%(exit)s (removed): it %(before)s")
                % {"exit": exit_label(name, old_step), "before": old.title(target)}
            )
    return notes


def _step_change(key: str, old: _Describer, new: _Describer) -> StepChange | None:
    old_step, new_step = old.by_key[key], new.by_key[key]
    old_view, new_view = old.view(key), new.view(key)
    notes = []
    if old_step.get("type") != new_step.get("type"):
        notes.append(
            _("another kind of step: before %(before)s, now %(now)s")
            % {"before": old_view.label, "now": new_view.label}
        )
        fields: list[str] = []
    else:
        old_settings, new_settings = settings_of(old_step), settings_of(new_step)
        fields = [
            name
            for name in sorted(set(old_settings) | set(new_settings))
            if old_settings.get(name) != new_settings.get(name)
        ]
    old_name, new_name = old_step.get("name") or "", new_step.get("name") or ""
    if old_name != new_name:
        if not old_name:
            notes.append(_("named “%(name)s”") % {"name": new_name})
        elif not new_name:
            notes.append(_("no longer named “%(name)s”") % {"name": old_name})
        else:
            notes.append(_("renamed from “%(before)s” to “%(after)s”") % {"before": old_name, "after": new_name})
    notes += _pointer_notes(key, old, new)
    if not fields and not notes:
        return None
    return StepChange(
        key=key,
        label=new_view.label,
        name=new_name,
        fields=_field_words(fields),
        before=old_view.what,
        after=new_view.what,
        notes=notes,
    )


def steps_diff(
    old_steps: dict[str, Any] | None,
    new_steps: dict[str, Any] | None,
    names: Names,
    ctx: RuleContext | None = None,
) -> StepsDiff:
    """What `new_steps` changes from `old_steps` (None: nothing before, every step is added).
    `ctx` lets conditions describe their segment rules; without it they are left out of the words."""
    old = _Describer(old_steps or {}, names, ctx)
    new = _Describer(new_steps or {}, names, ctx)
    added = [new.view(key) for key in new.by_key if key not in old.by_key]
    removed = [old.view(key) for key in old.by_key if key not in new.by_key]
    changed = [change for key in new.by_key if key in old.by_key and (change := _step_change(key, old, new))]
    start = ""
    old_start, new_start = _start(old_steps or {}), _start(new_steps or {})
    if old.by_key and new.by_key and old_start != new_start:
        start = _("The series now starts at %(now)s; before, at %(before)s") % {
            "now": new.step_name(new_start),
            "before": old.step_name(old_start),
        }
    changed_waits = [
        change.key
        for change in changed
        if change.fields
        and old.by_key[change.key].get("type") == new.by_key[change.key].get("type")
        and getattr(STEP_KINDS.get(new.by_key[change.key].get("type", "")), "waits", False)
    ]
    return StepsDiff(added=added, removed=removed, changed=changed, start=start, changed_waits=changed_waits)


def diff_summary(diff: StepsDiff) -> str:
    """One line for a list of versions: "2 steps added, 1 changed"."""
    if diff.empty:
        return _("no change to the steps")
    parts = []
    if diff.added:
        parts.append(ngettext("%(n)d step added", "%(n)d steps added", len(diff.added)) % {"n": len(diff.added)})
    if diff.removed:
        count = len(diff.removed)
        parts.append(ngettext("%(n)d step removed", "%(n)d steps removed", count) % {"n": count})
    if diff.changed:
        count = len(diff.changed)
        parts.append(ngettext("%(n)d step changed", "%(n)d steps changed", count) % {"n": count})
    if diff.start:
        parts.append(_("a new first step"))
    return ", ".join(parts)
