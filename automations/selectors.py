"""Reads of series, always scoped to a workspace: lists with their figures, counts per step,
enrollments (keyset pages) and a contact's enrollments with their trace."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Q, QuerySet

from automations.models import Enrollment, EnrollmentState, ReEntry, Series, SeriesStatus, SeriesVersion, Trace
from esp import clock
from esp.models import Workspace

PAGE_SIZE = 50


def series_list(*, workspace: Workspace, include_archived: bool = False) -> QuerySet[Series]:
    series = Series.objects.in_workspace(workspace).select_related("live_version")
    if not include_archived:
        series = series.exclude(status=SeriesStatus.ARCHIVED)
    return series.order_by("-created_at", "-id")


def series_get(*, workspace: Workspace, series_id: int) -> Series:
    return Series.objects.in_workspace(workspace).select_related("live_version").get(pk=series_id)


def series_versions(*, series: Series) -> QuerySet[SeriesVersion]:
    return series.versions.order_by("-number")


def series_latest_version(*, series: Series) -> SeriesVersion | None:
    return series.versions.order_by("-number").first()


@dataclass(frozen=True)
class SeriesFigures:
    entered_7d: int
    active: int
    converted_7d: int


def series_figures(*, workspace: Workspace, series_ids: list[int], days: int = 7) -> dict[int, SeriesFigures]:
    """Entered and converted in the last `days`, and live now, per series (one query)."""
    since = clock.now() - dt.timedelta(days=days)
    rows = (
        Enrollment.objects.filter(workspace=workspace, series_id__in=series_ids)
        .filter(Q(ended_at__isnull=True) | Q(entered_at__gte=since) | Q(ended_at__gte=since))
        .values("series_id")
        .annotate(
            entered=Count("id", filter=Q(entered_at__gte=since)),
            active=Count("id", filter=Q(ended_at__isnull=True)),
            converted=Count("id", filter=Q(state=EnrollmentState.CONVERTED, ended_at__gte=since)),
        )
    )
    figures = {row["series_id"]: SeriesFigures(row["entered"], row["active"], row["converted"]) for row in rows}
    return {sid: figures.get(sid, SeriesFigures(0, 0, 0)) for sid in series_ids}


@dataclass
class StepCounts:
    """What happened at one step, over every version that has its key."""

    reached: int = 0
    waiting_now: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    held_out: int = 0
    converted: int = 0
    exited: int = 0
    failed: int = 0
    # Skips, by why: the engine's ("stale …") and the send road's (frequency cap, smart sending).
    skipped: dict[str, int] = field(default_factory=dict)
    branches: dict[str, int] = field(default_factory=dict)


def series_step_counts(*, workspace: Workspace, series: Series) -> dict[str, StepCounts]:
    """Counts per step key: from the trace (one grouped scan of the series' rows on its index),
    the messages it made, and the live enrollments standing on each step now."""
    counts: dict[str, StepCounts] = defaultdict(StepCounts)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.step_key, t.outcome, t.branch, t.reason, m.state, m.reason,
                   count(*),
                   count(m.delivered_at), count(m.opened_at), count(m.clicked_at)
            FROM automations_trace t
            LEFT JOIN campaigns_message m ON m.id = t.message_id
            WHERE t.series_id = %s AND t.workspace_id = %s AND t.step_key <> ''
            GROUP BY 1, 2, 3, 4, 5, 6
            """,
            [series.pk, workspace.pk],
        )
        rows = cursor.fetchall()
    for key, outcome, branch, reason, m_state, m_reason, n, delivered, opened, clicked in rows:
        step = counts[key]
        if outcome == "sent":
            if m_state in ("skipped", "suppressed"):
                step.skipped[m_reason or m_state] = step.skipped.get(m_reason or m_state, 0) + n
            else:
                step.sent += n
            step.delivered += delivered
            step.opened += opened
            step.clicked += clicked
        elif outcome == "held_out":
            step.held_out += n
        elif outcome == "skipped":
            label = reason.split(":")[0] if reason else "skipped"
            step.skipped[label] = step.skipped.get(label, 0) + n
        elif outcome == "branched":
            step.branches[branch] = step.branches.get(branch, 0) + n
        elif outcome == "converted":
            step.converted += n
        elif outcome == "exited":
            step.exited += n
        elif outcome == "failed":
            step.failed += n
    # Reached: each enrollment that got to the step once, whatever happened there.
    reached_rows = (
        Trace.objects.filter(workspace=workspace, series=series)
        .exclude(step_key="")
        .values("step_key")
        .annotate(n=Count("enrollment_id", distinct=True))
    )
    for row in reached_rows:
        counts[row["step_key"]].reached = row["n"]
    waiting = (
        Enrollment.objects.filter(workspace=workspace, series=series, ended_at__isnull=True)
        .values("step_key")
        .annotate(n=Count("id"))
    )
    for row in waiting:
        counts[row["step_key"]].waiting_now = row["n"]
    return dict(counts)


def enrollments_page(
    *, workspace: Workspace, series: Series, before: int | None = None, state: str | None = None, size: int = PAGE_SIZE
) -> list[Enrollment]:
    """Newest first, keyset by id (`before`: the last id of the previous page)."""
    rows = Enrollment.objects.filter(workspace=workspace, series=series).select_related("contact")
    if state:
        rows = rows.filter(state=state)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return list(rows.order_by("-id")[:size])


def enrollment_get(*, workspace: Workspace, enrollment_id: int) -> Enrollment:
    return (
        Enrollment.objects.in_workspace(workspace).select_related("series", "contact", "version").get(pk=enrollment_id)
    )


def enrollment_trace(*, workspace: Workspace, enrollment: Enrollment) -> list[Trace]:
    return list(
        Trace.objects.filter(workspace=workspace, enrollment=enrollment).select_related("message").order_by("id")
    )


def contact_enrollments(*, workspace: Workspace, contact_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """A contact's enrollments, newest first, each with its trace (two queries)."""
    enrollments = list(
        Enrollment.objects.filter(workspace=workspace, contact_id=contact_id)
        .select_related("series")
        .order_by("-id")[:limit]
    )
    traces: dict[int, list[Trace]] = defaultdict(list)
    for trace in (
        Trace.objects.filter(workspace=workspace, enrollment_id__in=[e.pk for e in enrollments])
        .select_related("message")
        .order_by("id")
    ):
        traces[trace.enrollment_id].append(trace)
    return [{"enrollment": e, "trace": traces[e.pk]} for e in enrollments]


# --- for the API: querysets it pages by id, and what a page needs in one query each ----------


def series_draft_numbers(*, workspace: Workspace, series_ids: list[int]) -> dict[int, int]:
    """The number of each series' unpublished version (only the latest can be one), if any."""
    rows = (
        SeriesVersion.objects.filter(workspace=workspace, series_id__in=series_ids, published_at__isnull=True)
        .values("series_id")
        .annotate(number=Max("number"))
    )
    return {row["series_id"]: row["number"] for row in rows}


def series_version_get(*, series: Series, number: int) -> SeriesVersion:
    return series.versions.get(workspace_id=series.workspace_id, number=number)


def series_enrollments(*, workspace: Workspace, series: Series, state: str = "") -> QuerySet[Enrollment]:
    """A series' enrollments (paged newest first by id, on the (series, -id) index)."""
    rows = Enrollment.objects.filter(workspace=workspace, series=series).select_related("contact", "version")
    return rows.filter(state=state) if state else rows


def contact_enrollments_rows(*, workspace: Workspace, contact_id: int) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(workspace=workspace, contact_id=contact_id).select_related(
        "contact", "version", "series"
    )


def traces_by_enrollment(*, workspace: Workspace, enrollment_ids: list[int]) -> dict[int, list[Trace]]:
    """The trace of each of these enrollments, oldest row first (one query)."""
    traces: dict[int, list[Trace]] = defaultdict(list)
    for trace in Trace.objects.filter(workspace=workspace, enrollment_id__in=enrollment_ids).order_by("id"):
        traces[trace.enrollment_id].append(trace)
    return traces


@dataclass(frozen=True)
class Refusal:
    """Why the series' rules kept a contact out of an enrollment asked for by hand."""

    reason: str  # "already_enrolled", "re_entry" or "flow_filter"
    enrollment_id: int | None = None


def enrollment_refusal(*, workspace: Workspace, series: Series, contact_id: int, key: str) -> Refusal:
    """Read after an enrollment was refused, in the same transaction: the rules of
    automations.engine.enroll in the order they keep a contact out."""
    mine = Enrollment.objects.filter(workspace=workspace, series=series, contact_id=contact_id, entry_key=key[:200])
    live = mine.filter(ended_at__isnull=True).values_list("pk", flat=True).first()
    if live is not None:
        return Refusal("already_enrolled", live)
    if series.re_entry != ReEntry.ALWAYS:
        earlier = mine
        if series.re_entry == ReEntry.PERIOD and series.re_entry_days:
            earlier = earlier.filter(entered_at__gt=clock.now() - dt.timedelta(days=series.re_entry_days))
        last = earlier.order_by("-id").values_list("pk", flat=True).first()
        if last is not None:
            return Refusal("re_entry", last)
    return Refusal("flow_filter")


def names_for(
    *, workspace: Workspace, template_ids: set[int], list_ids: set[int], segment_ids: set[int]
) -> dict[str, dict[int, str]]:
    """The names of the templates, lists and segments a series names by id (one query each,
    only for the kinds named)."""
    from audiences.models import MailingList, Segment
    from campaigns.models import EmailTemplate

    names: dict[str, dict[int, str]] = {"templates": {}, "lists": {}, "segments": {}}
    for kind, model, ids in (
        ("templates", EmailTemplate, template_ids),
        ("lists", MailingList, list_ids),
        ("segments", Segment, segment_ids),
    ):
        if ids:
            names[kind] = dict(model.objects.in_workspace(workspace).filter(pk__in=ids).values_list("pk", "name"))  # type: ignore[attr-defined]
    return names


# --- versions: who is on which, and who publishing could move -------------------------------


def version_enrollment_counts(*, workspace: Workspace, series: Series) -> dict[int, int]:
    """Enrollments per version id: those that entered it, and those moved onto it when it was
    published (an enrollment keeps only the version it is on)."""
    rows = (
        Enrollment.objects.filter(workspace=workspace, series=series)
        .values("version_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["version_id"]: row["n"] for row in rows}


def waiting_on_steps(*, workspace: Workspace, series: Series, steps: dict[str, Any], keys: list[str]) -> dict[str, int]:
    """Per key of `steps`, the live enrollments standing on that step in a version that has it
    with the same kind: those publishing `steps` could move (automations.services._move_waiting)."""
    kinds = {step["key"]: step["type"] for step in steps.get("steps", []) if step.get("key") in keys}
    rows = list(
        Enrollment.objects.filter(workspace=workspace, series=series, ended_at__isnull=True, step_key__in=list(kinds))
        .values("version_id", "step_key")
        .annotate(n=Count("id"))
        .order_by()
    )
    versions = SeriesVersion.objects.filter(workspace=workspace, pk__in={row["version_id"] for row in rows})
    by_id = {version.pk: version for version in versions}
    counts = dict.fromkeys(keys, 0)
    for row in rows:
        step = by_id[row["version_id"]].step(row["step_key"])
        if step is not None and step.get("type") == kinds[row["step_key"]]:
            counts[row["step_key"]] += row["n"]
    return counts
