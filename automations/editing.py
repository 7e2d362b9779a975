"""The series builder's writes: every edit goes to the series' draft, one at a time, each with
what undoes it.

A draft may hold problems while the marketer builds (an email without its template yet, a
wait-for without an event): the builder saves it as it is and shows each problem on its step;
only publishing refuses them (automations.services.series_publish checks the graph whole).
An edit is applied to the draft as it is in the database, under the series' lock, so two
marketers editing at once each change what the other left, and an edit naming a step that is
gone is refused with a sentence, not applied to a stale copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from automations.graph_edits import EditError
from automations.models import DraftChange, Series, SeriesStatus, SeriesVersion
from automations.services import series_draft
from automations.steps import CleanContext
from automations.steps.graph import validate_steps
from esp import clock
from esp.models import Workspace

# How many edits of a draft "undo" can take back.
UNDO_DEPTH = 30
_STEP_PATH = re.compile(r"^steps\[([^\]]+)\]")

Edit = Callable[[dict[str, Any]], tuple[dict[str, Any], str]]


@dataclass
class Problems:
    """What keeps a draft from being published: by step key, and for the series as a whole."""

    by_step: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.by_step or self.general)

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.by_step.values()) + len(self.general)


def draft_problems(workspace: Workspace, series: Series, steps: dict[str, Any] | None) -> Problems:
    """The publish check's errors, put on the steps they name ("steps[wait-1].amount" → the
    step wait-1)."""
    problems = Problems()
    if not series.trigger:
        problems.general.append(_("Say what starts the series."))
    listed = (steps or {}).get("steps") or []
    if not listed:
        problems.general.append(_("Add a first step."))
        return problems
    try:
        validate_steps(steps, CleanContext(workspace, series_kind=series.kind))
    except ValidationError as error:
        keys = [s.get("key") if isinstance(s, dict) else None for s in listed]
        for path, messages in error.message_dict.items():
            found = _STEP_PATH.match(path)
            key = found.group(1) if found else None
            # A step that has no valid key yet is named by its position ("steps[3]"); a key made
            # of digits that is a real step's key stays that step's.
            if key is not None and key not in keys and key.isdigit() and int(key) < len(keys) and keys[int(key)]:
                key = keys[int(key)]
            if key is None:
                problems.general.extend(messages)
            else:
                problems.by_step.setdefault(str(key), []).extend(messages)
    return problems


def _writable(workspace: Workspace, series_id: int) -> Series:
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    if series.status == SeriesStatus.ARCHIVED:
        raise EditError(_("An archived series cannot be changed."))
    return series


def _user(user: AbstractBaseUser | AnonymousUser | None) -> Any:
    return user if user is not None and user.is_authenticated else None


@transaction.atomic
def draft_edit(
    *, workspace: Workspace, series_id: int, edit: Edit, user: AbstractBaseUser | AnonymousUser | None = None
) -> tuple[SeriesVersion, str]:
    """Apply `edit` (steps → new steps and what it did, in words) to the draft, recording the
    steps before it for undo. Raises EditError with the marketer's sentence when it cannot."""
    series = _writable(workspace, series_id)
    draft = series_draft(series)
    before = draft.steps if isinstance(draft.steps, dict) else {"start": None, "steps": []}
    steps, what = edit(before)
    if steps == before:
        return draft, what
    DraftChange.objects.create(
        workspace=workspace,
        version=draft,
        steps_before=before,
        what=what[:300],
        made_by=_user(user),
        made_at=clock.now(),
    )
    stale = list(draft.changes.order_by("-id").values_list("pk", flat=True)[UNDO_DEPTH:])
    if stale:
        DraftChange.objects.filter(pk__in=stale).delete()
    draft.steps = steps
    draft.save(update_fields=["steps"])
    series.updated_at = clock.now()
    series.save(update_fields=["updated_at"])
    return draft, what


@transaction.atomic
def draft_undo(*, workspace: Workspace, series_id: int) -> str:
    """Put the draft back as it was before its last edit; what was undone, in words."""
    series = _writable(workspace, series_id)
    latest = series.versions.order_by("-number").first()
    change = latest.changes.order_by("-id").first() if latest is not None and latest.published_at is None else None
    if latest is None or change is None:
        raise EditError(_("There is nothing to undo."))
    latest.steps = change.steps_before
    latest.save(update_fields=["steps"])
    change.delete()
    return change.what


def last_change(version: SeriesVersion | None) -> DraftChange | None:
    if version is None or version.published_at is not None:
        return None
    return version.changes.order_by("-id").first()
