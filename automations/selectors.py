"""Reads of series, always scoped to a workspace: lists with their figures, counts per step,
enrollments (keyset pages) and a contact's enrollments with their trace."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Left

from audiences.facts.purchases import event_amount_sql
from audiences.models import Event, EventType
from audiences.segments.event_conditions import property_filters_q
from audiences.segments.registry import RuleContext
from automations.models import (
    Enrollment,
    EnrollmentState,
    ReEntry,
    Series,
    SeriesStatus,
    SeriesVersion,
    Trace,
    TraceOutcome,
)
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
    """What happened at one step over a period, over every version that has its key."""

    reached: int = 0
    waiting_now: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    held_out: int = 0
    converted: int = 0
    # The goal events' amounts of those conversions (see _conversion_revenue); None when the
    # series has no goal event to read them from.
    revenue: Decimal | None = None
    exited: int = 0
    failed: int = 0
    # Skips, by why: the engine's ("stale …") and the send road's (frequency cap, smart sending).
    skipped: dict[str, int] = field(default_factory=dict)
    branches: dict[str, int] = field(default_factory=dict)


# A step run's skip reason as one label: the engine's reason up to its colon ("stale: fell due
# while paused" -> "stale"), or the send road's reason for a message it did not send. The
# series page counts by it and the list behind a count filters by it: both read this.
SKIP_LABEL_SQL = """
    CASE WHEN t.outcome = 'skipped' THEN (CASE WHEN t.reason = '' THEN 'skipped' ELSE split_part(t.reason, ':', 1) END)
         WHEN t.outcome = 'sent' AND m.state IN ('skipped', 'suppressed') THEN coalesce(nullif(m.reason, ''), m.state)
         ELSE '' END"""

# A visit to a step leaves one row, or, when the contact waited there, a "waiting" row first and
# one more when the wait ended (wait over, a branch, converted meanwhile). The row a visit
# begins with is its "waiting" row, else its only one: "reached in the period" counts visits
# that began in it, not people who merely left a long wait then.
ARRIVAL_SQL = """
    (t.outcome = 'waiting' OR NOT EXISTS (
        SELECT 1 FROM automations_trace w
        WHERE w.enrollment_id = t.enrollment_id AND w.id < t.id AND w.step_key = t.step_key
          AND w.outcome = 'waiting'))"""


@contextmanager
def _without_jit() -> Iterator[CursorWrapper]:
    """A cursor in a transaction with JIT compilation off. On a big series the planner's cost of
    the counts (the arrival check's correlated probes above all) passes jit_above_cost, and
    compiling took longer than running: 440 of 530 ms on 127k trace rows. Restored after, in
    case an outer transaction goes on (a failure rolls the setting back with the savepoint)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit')")
        previous = cursor.fetchone()[0]
        cursor.execute("SET LOCAL jit = off")
        yield cursor
        cursor.execute("SELECT set_config('jit', %s, true)", [previous])


def series_step_counts(
    *, workspace: Workspace, series: Series, since: dt.datetime | None = None
) -> dict[str, StepCounts]:
    """Counts per step key of what happened from `since` on (all time when None), and who
    stands on each step now: four grouped queries whatever the number of steps, on the trace's
    (series, step, time) index and the live enrollments' (series, step) index."""
    counts: dict[str, StepCounts] = defaultdict(StepCounts)
    period = "AND t.ran_at >= %s" if since is not None else ""
    params: list[Any] = [series.pk, workspace.pk] + ([since] if since is not None else [])
    with _without_jit() as cursor:
        cursor.execute(
            f"""
            SELECT t.step_key, t.outcome, CASE WHEN t.outcome = 'branched' THEN t.branch ELSE '' END,
                   {SKIP_LABEL_SQL}, count(*), count(m.delivered_at), count(m.opened_at), count(m.clicked_at)
            FROM automations_trace t
            LEFT JOIN campaigns_message m ON m.id = t.message_id
            WHERE t.series_id = %s AND t.workspace_id = %s AND t.step_key <> '' {period}
            GROUP BY 1, 2, 3, 4
            """,  # noqa: S608 — fixed fragments; values are parameters
            params,
        )
        rows = cursor.fetchall()
        # Reached: the visits that began in the period (all time: every enrollment that got there).
        cursor.execute(
            f"""
            SELECT t.step_key, count(DISTINCT t.enrollment_id)
            FROM automations_trace t
            WHERE t.series_id = %s AND t.workspace_id = %s AND t.step_key <> '' {period}
              {"AND " + ARRIVAL_SQL if since is not None else ""}
            GROUP BY 1
            """,  # noqa: S608 — fixed fragments; values are parameters
            params,
        )
        reached = cursor.fetchall()
        waiting = list(
            Enrollment.objects.filter(workspace=workspace, series=series, ended_at__isnull=True)
            .values("step_key")
            .annotate(n=Count("id"))
        )
        revenue = _conversion_revenue(cursor, workspace=workspace, series=series, since=since)
    for key, outcome, branch, skip, n, delivered, opened, clicked in rows:
        step = counts[key]
        if skip:
            step.skipped[skip] = step.skipped.get(skip, 0) + n
        elif outcome == "sent":
            step.sent += n
        elif outcome == "held_out":
            step.held_out += n
        elif outcome == "branched":
            step.branches[branch] = step.branches.get(branch, 0) + n
        elif outcome == "converted":
            step.converted += n
        elif outcome == "exited":
            step.exited += n
        elif outcome == "failed":
            step.failed += n
        step.delivered += delivered
        step.opened += opened
        step.clicked += clicked
    for key, n in reached:
        counts[key].reached = n
    for row in waiting:
        counts[row["step_key"]].waiting_now = row["n"]
    if revenue is not None:
        for key, step in counts.items():
            step.revenue = revenue.get(key, Decimal(0))
    return dict(counts)


def goal_event_of_conversion(workspace: Workspace, series: Series) -> QuerySet[Event]:
    """For a row of the trace (the outer query) that says "converted": the goal event that ended
    the enrollment. The engine converts on the first goal event (name, property filters and, for a
    keyed goal, the entry's key) that happened between entering and the conversion; read again
    here with the series' goal as it is now, earliest first."""
    goal = series.goal or {}
    events = Event.objects.filter(
        property_filters_q(goal.get("where") or [], RuleContext(workspace).clock),
        workspace_id=workspace.pk,
        contact_id=OuterRef("enrollment__contact_id"),
        type=EventType.TRACK,
        name=goal.get("event", ""),
        occurred_at__gte=OuterRef("enrollment__entered_at"),
        occurred_at__lte=OuterRef("ran_at"),
    )
    if goal.get("key"):
        events = events.annotate(goal_key=Left(KeyTextTransform(goal["key"], "properties"), 200)).filter(
            goal_key=OuterRef("enrollment__entry_key")
        )
    return events.order_by("occurred_at", "id")


# What a conversion is worth: its goal event's amount, read as the purchase facts read an
# order's (total, else revenue, else the products' price × quantity), else its `value` (the
# Segment spec's amount of events that are not orders). A goal event without one adds 0.
GOAL_AMOUNT_SQL = event_amount_sql("c.goal_properties", also=("value",))


def _conversion_revenue(
    cursor: CursorWrapper, *, workspace: Workspace, series: Series, since: dt.datetime | None
) -> dict[str, Decimal] | None:
    """Per step key, the revenue of the conversions counted there; None without a goal event.

    A conversion belongs to the step the contact stood on when the goal arrived: waiting on it
    (the wait after an email, a wait for an event) or at it as it ran (a send step finding the
    goal already there). That is the step its trace row names, so "converted" and its revenue
    are counted by one rule. One query: a correlated lookup of each conversion's goal event on
    the events' contact index, made once per conversion (MATERIALIZED: the amount expression
    names the goal's properties several times, and each mention would repeat the lookup)."""
    if not (series.goal or {}).get("event"):
        return None
    conversions = Trace.objects.filter(workspace=workspace, series=series, outcome=TraceOutcome.CONVERTED).exclude(
        step_key=""
    )
    if since is not None:
        conversions = conversions.filter(ran_at__gte=since)
    sql, params = _with_goal_properties(workspace, series, conversions)
    cursor.execute(
        f"WITH c AS MATERIALIZED ({sql}) "  # noqa: S608 — Django's own compilation and fixed fragments
        f"SELECT c.step_key, coalesce(sum({GOAL_AMOUNT_SQL}), 0) FROM c GROUP BY 1",
        params,
    )
    return {key: Decimal(revenue) for key, revenue in cursor.fetchall()}


def _with_goal_properties(workspace: Workspace, series: Series, conversions: QuerySet[Trace]) -> tuple[str, Any]:
    """The SQL of these "converted" rows (id, step key) with their goal event's properties."""
    rows = conversions.annotate(
        goal_properties=Subquery(goal_event_of_conversion(workspace, series).values("properties")[:1])
    ).values("id", "step_key", "goal_properties")
    return rows.query.sql_with_params()


def conversion_amounts(*, workspace: Workspace, series: Series, trace_ids: list[int]) -> dict[int, Decimal]:
    """What each of these conversions (trace row ids, a page of them) was worth, by the rule of
    the step counts' revenue; a conversion whose goal event has no amount is left out."""
    if not trace_ids or not (series.goal or {}).get("event"):
        return {}
    conversions = Trace.objects.filter(
        workspace=workspace, series=series, outcome=TraceOutcome.CONVERTED, pk__in=trace_ids
    )
    sql, params = _with_goal_properties(workspace, series, conversions)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH c AS MATERIALIZED ({sql}) SELECT c.id, {GOAL_AMOUNT_SQL} FROM c",  # noqa: S608 — as above
            params,
        )
        return {row_id: Decimal(amount) for row_id, amount in cursor.fetchall() if amount is not None}


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
