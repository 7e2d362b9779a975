"""Every write to series: create and edit (a draft version), publish, pause, resume, archive,
enroll through the API and end enrollments. Views, the API, tasks and recipes call these."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from audiences.models import Contact
from audiences.segments.compiler import validate_rules
from audiences.segments.values import RuleErrors
from automations.engine.enroll import enrollments_insert
from automations.engine.events import enrollments_end
from automations.models import (
    EnrollmentState,
    ReEntry,
    Series,
    SeriesKind,
    SeriesStatus,
    SeriesVersion,
    TraceOutcome,
    new_webhook_secret,
)
from automations.steps import CleanContext
from automations.steps.graph import validate_steps
from automations.triggers import clean_goal, clean_trigger
from esp import clock
from esp.models import User, Workspace
from esp.queue import enqueue_after_commit

# campaigns.models.SendPriority values, by the kind of series, when the marketer picks none.
DEFAULT_PRIORITY = {SeriesKind.TRANSACTIONAL: 30, SeriesKind.WELCOME: 20, SeriesKind.TRIGGER: 20, SeriesKind.PROMO: 10}
PRIORITIES = (10, 20, 30)
SETTINGS_FIELDS = (
    "name", "kind", "trigger", "flow_filter", "goal", "re_entry", "re_entry_days", "priority", "smart_sending",
    "holdout_percent",
)  # fmt: skip


@dataclass(frozen=True)
class SeriesInput:
    """What a marketer or an API client sets on a series; None leaves a field as it is."""

    name: str | None = None
    kind: str | None = None
    trigger: Any = None
    flow_filter: Any = None
    goal: Any = None
    re_entry: str | None = None
    re_entry_days: int | None = None
    priority: int | None = None
    smart_sending: bool | None = None
    holdout_percent: int | None = None
    steps: Any = None


def _clean_settings(workspace: Workspace, data: SeriesInput, series: Series | None) -> dict[str, Any]:
    errors = RuleErrors()
    ctx = CleanContext(workspace, series_kind=data.kind or (series.kind if series else ""))
    cleaned: dict[str, Any] = {}
    if data.name is not None or series is None:
        name = (data.name or "").strip()
        if not name or len(name) > 200:
            errors.add("name", _("Name the series (at most 200 characters)."))
        cleaned["name"] = name
    if data.kind is not None:
        if data.kind not in SeriesKind.values:
            errors.add("kind", _("Expected one of: %(allowed)s.") % {"allowed": ", ".join(SeriesKind.values)})
        cleaned["kind"] = data.kind
    if data.trigger is not None or series is None:
        cleaned["trigger"] = clean_trigger(data.trigger if data.trigger is not None else {"type": "api"}, ctx, errors)
    if data.flow_filter is not None:
        if data.flow_filter in ({}, []):
            cleaned["flow_filter"] = {}
        else:
            try:
                cleaned["flow_filter"] = validate_rules(workspace=workspace, rules=data.flow_filter)
            except ValidationError as error:
                for field, messages in error.message_dict.items():
                    for message in messages:
                        errors.add("flow_filter" if field == "rules" else f"flow_filter.{field}", message)
    if data.goal is not None:
        cleaned["goal"] = clean_goal(data.goal, ctx, errors)
    if data.re_entry is not None:
        if data.re_entry not in ReEntry.values:
            errors.add("re_entry", _("Expected one of: %(allowed)s.") % {"allowed": ", ".join(ReEntry.values)})
        cleaned["re_entry"] = data.re_entry
    if data.re_entry_days is not None:
        if (
            isinstance(data.re_entry_days, bool)
            or not isinstance(data.re_entry_days, int)
            or not 1 <= data.re_entry_days <= 3650
        ):
            errors.add("re_entry_days", _("Expected a whole number of days from 1 to 3650."))
        cleaned["re_entry_days"] = data.re_entry_days
    re_entry = cleaned.get("re_entry", series.re_entry if series else ReEntry.ONCE)
    if re_entry == ReEntry.PERIOD and not cleaned.get("re_entry_days", series.re_entry_days if series else None):
        errors.add("re_entry_days", _("Say after how many days a contact may enter again."))
    if data.priority is not None:
        if data.priority not in PRIORITIES:
            errors.add("priority", _("Expected one of: 10 (promotional), 20 (triggered), 30 (transactional)."))
        cleaned["priority"] = data.priority
    elif series is None:
        cleaned["priority"] = DEFAULT_PRIORITY.get(data.kind or SeriesKind.TRIGGER, 20)  # type: ignore[call-overload]
    if data.smart_sending is not None:
        if not isinstance(data.smart_sending, bool):
            errors.add("smart_sending", _("Expected true or false."))
        cleaned["smart_sending"] = data.smart_sending
    if data.holdout_percent is not None:
        if (
            isinstance(data.holdout_percent, bool)
            or not isinstance(data.holdout_percent, int)
            or not 0 <= data.holdout_percent <= 50
        ):
            errors.add("holdout_percent", _("Expected a whole percentage from 0 to 50."))
        cleaned["holdout_percent"] = data.holdout_percent
    steps = None
    if data.steps is not None:
        try:
            steps = validate_steps(data.steps, ctx)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                for message in messages:
                    errors.add(field if field.startswith("steps") else f"steps.{field}", message)
    errors.raise_if_any()
    if steps is not None:
        cleaned["steps"] = steps
    return cleaned


@transaction.atomic
def series_create(*, workspace: Workspace, data: SeriesInput) -> Series:
    """A new series in draft, with its first (draft) version when steps are given."""
    cleaned = _clean_settings(workspace, data, None)
    steps = cleaned.pop("steps", {"start": None, "steps": []})
    series = Series.objects.create(workspace=workspace, **cleaned)
    SeriesVersion.objects.create(workspace=workspace, series=series, number=1, steps=steps)
    return series


@transaction.atomic
def series_update(*, workspace: Workspace, series_id: int, data: SeriesInput) -> Series:
    """Change settings and/or the draft's steps. Steps of a published version are never
    changed: a series whose latest version is published gets a new draft."""
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    if series.status == SeriesStatus.ARCHIVED:
        raise ValidationError({"status": [_("An archived series cannot be changed.")]})
    cleaned = _clean_settings(workspace, data, series)
    steps = cleaned.pop("steps", None)
    for field, value in cleaned.items():
        setattr(series, field, value)
    series.updated_at = clock.now()
    series.save()
    if steps is not None:
        draft = series_draft(series)
        draft.steps = steps
        draft.save(update_fields=["steps"])
    return series


def series_draft(series: Series) -> SeriesVersion:
    """The series' editable version: its latest if unpublished, else a new copy of the latest."""
    latest = series.versions.order_by("-number").first()
    if latest is not None and latest.published_at is None:
        return latest
    number = (series.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    steps = json.loads(json.dumps(latest.steps)) if latest is not None else {"start": None, "steps": []}
    return SeriesVersion.objects.create(workspace=series.workspace, series=series, number=number, steps=steps)


@transaction.atomic
def series_publish(
    *,
    workspace: Workspace,
    series_id: int,
    move_waiting: bool = False,
    user: User | None = None,
    move_steps: Iterable[str] | None = None,
) -> SeriesVersion:
    """Publish the draft (checked again: templates may have gone since it was saved) as `user`'s
    and make the series live. Enrollments already inside keep their version, unless
    `move_waiting`: then those standing on a step whose key and kind the new version keeps move
    to it (a shortened wait applies to them), and the others stay where they are. `move_steps`
    (keys of the draft's steps) moves only those standing on these steps: the waits the
    marketer chose to apply to the people already waiting."""
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    if series.status == SeriesStatus.ARCHIVED:
        raise ValidationError({"status": [_("An archived series cannot be published.")]})
    draft = series.versions.order_by("-number").first()
    if draft is None or draft.published_at is not None:
        raise ValidationError({"steps": [_("There is no draft to publish: change the steps first.")]})
    draft.steps = validate_steps(draft.steps, CleanContext(workspace, series_kind=series.kind))
    if not series.trigger:
        raise ValidationError({"trigger": [_("Say what starts the series.")]})
    keys = _steps_to_move(draft, move_steps)
    now = clock.now()
    draft.published_at = now
    draft.published_by = user
    draft.save(update_fields=["steps", "published_at", "published_by"])
    previous = series.live_version
    series.live_version = draft
    if series.status == SeriesStatus.DRAFT:
        series.status = SeriesStatus.LIVE
    series.updated_at = now
    series.save(update_fields=["live_version", "status", "updated_at"])
    if previous is not None and (move_waiting or keys):
        _move_waiting(series, draft, now, None if move_waiting else keys)
    return draft


def _steps_to_move(draft: SeriesVersion, move_steps: Iterable[str] | None) -> list[str]:
    """The keys asked for, each a step of the draft, or a ValidationError naming the others."""
    if move_steps is None:
        return []
    keys = [move_steps] if isinstance(move_steps, str) else list(move_steps)
    present = {step["key"] for step in draft.steps["steps"]}
    unknown = [str(key) for key in keys if not isinstance(key, str) or key not in present]
    if unknown:
        raise ValidationError(
            {
                "move_steps": [
                    _("Not a step of the draft being published: %(keys)s. Name steps by their key.")
                    % {"keys": ", ".join(unknown)}
                ]
            }
        )
    return keys


def _move_waiting(series: Series, version: SeriesVersion, now: dt.datetime, keys: list[str] | None = None) -> None:
    """Live enrollments on older versions whose current step the new version keeps (same key
    and kind) move to it and fall due now, so a changed wait is measured again from when it
    started; the others keep their version. With `keys`, only those standing on these steps."""
    from django.db import connection

    kinds = {step["key"]: step["type"] for step in version.steps["steps"] if keys is None or step["key"] in keys}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE automations_enrollment e SET version_id = %s, due_at = LEAST(e.due_at, %s)
            FROM automations_seriesversion old
            WHERE e.series_id = %s AND e.ended_at IS NULL AND e.version_id <> %s AND old.id = e.version_id
              AND (%s::jsonb) ->> e.step_key = (
                  SELECT s ->> 'type' FROM jsonb_array_elements(old.steps -> 'steps') s WHERE s ->> 'key' = e.step_key
              )
            """,
            [version.pk, now, series.pk, version.pk, json.dumps(kinds)],
        )


@transaction.atomic
def series_pause(*, workspace: Workspace, series_id: int) -> Series:
    """Hold the series: nobody enters, due steps wait (messages already queued are held at send
    time by the send gate)."""
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    if series.status != SeriesStatus.LIVE:
        raise ValidationError({"status": [_("Only a live series can be paused.")]})
    series.status = SeriesStatus.PAUSED
    series.updated_at = clock.now()
    series.save(update_fields=["status", "updated_at"])
    return series


@transaction.atomic
def series_resume(*, workspace: Workspace, series_id: int, skip_older_than: dt.timedelta | None = None) -> Series:
    """Go live again. With `skip_older_than`, an email step that fell due more than that long
    ago is skipped (traced as stale) instead of sending mail about last week's cart."""
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    if series.status != SeriesStatus.PAUSED:
        raise ValidationError({"status": [_("Only a paused series can be resumed.")]})
    now = clock.now()
    series.status = SeriesStatus.LIVE
    series.stale_before = now - skip_older_than if skip_older_than is not None else None
    series.updated_at = now
    series.save(update_fields=["status", "stale_before", "updated_at"])
    from automations.tasks import run_due_enrollments

    enqueue_after_commit(run_due_enrollments)
    return series


@transaction.atomic
def series_archive(*, workspace: Workspace, series_id: int) -> Series:
    """Archive: live enrollments end as exited; the series and its figures stay readable."""
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    now = clock.now()
    live = list(series.enrollments.filter(ended_at__isnull=True).only("id"))
    enrollments_end(
        [(e, "series archived") for e in live], state=EnrollmentState.EXITED, outcome=TraceOutcome.EXITED, now=now
    )
    series.status = SeriesStatus.ARCHIVED
    series.updated_at = now
    series.save(update_fields=["status", "updated_at"])
    return series


@transaction.atomic
def enrollment_create(
    *, workspace: Workspace, series_id: int, contact: Contact, key: str = "", data: dict[str, Any] | None = None
) -> int | None:
    """Enroll one contact (the API trigger), with the series' rules; the new enrollment's id, or
    None when the rules keep the contact out (already inside with this key, re-entry, the flow
    filter). Runs at once after commit."""
    series = Series.objects.select_related("workspace", "live_version").get(workspace=workspace, pk=series_id)
    if series.status != SeriesStatus.LIVE or series.live_version is None:
        raise ValidationError({"series": [_("The series is not live.")]})
    if contact.workspace_id != workspace.pk:
        raise ValidationError({"contact": [_("No such contact.")]})
    ids = enrollments_insert(
        series,
        "SELECT %s::bigint AS contact_id, %s::text AS entry_key, %s::jsonb AS entry_data, "
        "NULL::bigint AS entry_event_id",
        [contact.pk, key[:200], json.dumps(data or {})],
        clock.now(),
    )
    if ids:
        from automations.tasks import run_enrollments

        enqueue_after_commit(run_enrollments, ids)
    return ids[0] if ids else None


@transaction.atomic
def enrollment_end(*, workspace: Workspace, enrollment_id: int, reason: str = "ended by hand") -> bool:
    from automations.models import Enrollment

    enrollment = Enrollment.objects.get(workspace=workspace, pk=enrollment_id)
    return bool(
        enrollments_end(
            [(enrollment, reason)], state=EnrollmentState.EXITED, outcome=TraceOutcome.EXITED, now=clock.now()
        )
    )


def series_deletable(series: Series) -> bool:
    """Only a series that never went live may be deleted: one that ran keeps its enrollments,
    trace and figures, and is archived instead."""
    return series.status == SeriesStatus.DRAFT and series.live_version_id is None


@transaction.atomic
def series_delete(*, workspace: Workspace, series_id: int) -> None:
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    if not series_deletable(series) or series.enrollments.exists():
        raise ValidationError({"status": [_("A series that has run is archived, not deleted.")]})
    series.delete()


@transaction.atomic
def series_webhook_secret_rotate(*, workspace: Workspace, series_id: int) -> str:
    """A new signing secret for the series' webhooks (the old one leaked, or a receiver
    changes hands); deliveries signed from now on use it. Returns the secret to show."""
    series = Series.objects.select_for_update().get(workspace=workspace, pk=series_id)
    series.webhook_secret = new_webhook_secret()
    series.save(update_fields=["webhook_secret"])
    return series.webhook_secret
