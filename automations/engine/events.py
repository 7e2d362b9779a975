"""What arriving events and contact changes do to series: goals convert, awaited events wake
their waits, triggers enroll, and leaving (unsubscribe, suppression) ends enrollments.

All of it is set-based over a hook's batch: candidates are found by an indexed lookup on the
batch's contacts (never by polling), and the few property checks left run over that small set.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from audiences.models import Contact, Event, EventType, SubscriptionStatus
from audiences.segments.event_conditions import property_filters_q
from audiences.segments.registry import RuleContext
from automations.engine.checks import goal_matches, goal_reason, property_text
from automations.engine.enroll import candidates_from_contacts, enrollments_insert
from automations.models import Enrollment, EnrollmentState, Series, SeriesStatus, SeriesVersion, Trace, TraceOutcome
from esp import clock
from esp.models import Workspace

# An event that happened this long before its series went live still starts it: it was being
# sent or processed when the marketer pressed publish.
BEFORE_LIVE = dt.timedelta(hours=1)
# An older event starts nothing however it arrives (a backlog, an import, a task handed over
# again weeks later): nobody wants a reminder of a cart from last month, and the rules that
# kept it out then (re-entry per period) would no longer hold.
MAX_EVENT_AGE = dt.timedelta(days=1)


def live_series(workspace_id: int, trigger_type: str | None = None) -> list[Series]:
    series = Series.objects.select_related("workspace", "live_version").filter(
        workspace_id=workspace_id, status=SeriesStatus.LIVE, live_version__isnull=False
    )
    if trigger_type is not None:
        series = series.filter(trigger__type=trigger_type)
    return list(series)


@transaction.atomic
def events_arrived(*, workspace_id: int, event_ids: Collection[int]) -> list[int]:
    """Goals, waits and event triggers for a batch of stored events; the enrollments that are
    due to run now (woken waits and new entries)."""
    now = clock.now()
    events = list(
        Event.objects.filter(
            workspace_id=workspace_id, pk__in=event_ids, contact_id__isnull=False, type=EventType.TRACK
        )
        .only("id", "contact_id", "name", "occurred_at", "properties")
        .order_by("occurred_at", "id")
    )
    if not events:
        return []
    series = live_series(workspace_id)
    _convert(series, events, now)
    due = _wake_waits(workspace_id, events, now)
    for one in series:
        if one.trigger.get("type") == "event" and any(e.name == one.trigger.get("event") for e in events):
            due += _enroll_from_events(one, [e.pk for e in events if e.name == one.trigger["event"]], now)
    return due


def _convert(series: list[Series], events: list[Event], now: dt.datetime) -> None:
    """End as converted the live enrollments whose series' goal one of these events is."""
    by_goal: dict[str, list[Series]] = defaultdict(list)
    for one in series:
        if one.goal.get("event"):
            by_goal[one.goal["event"]].append(one)
    if not by_goal:
        return
    relevant = [e for e in events if e.name in by_goal]
    if not relevant:
        return
    enrollments = Enrollment.objects.filter(
        series_id__in=[s.pk for name in by_goal for s in by_goal[name]],
        contact_id__in={e.contact_id for e in relevant},
        ended_at__isnull=True,
    ).only("id", "workspace_id", "series_id", "contact_id", "entry_key", "entered_at", "step_key")
    series_by_id = {s.pk: s for group in by_goal.values() for s in group}
    # The goal's events of each series, property filters applied once per series.
    goal_events = {
        s.pk: _events_matching(relevant, s.goal["event"], s.goal.get("where"), s.workspace, now)
        for s in series_by_id.values()
    }
    ended: dict[int, tuple[Enrollment, str]] = {}
    for enrollment in enrollments:
        one = series_by_id[enrollment.series_id]
        for event in goal_events[one.pk]:
            if goal_matches(one, event, enrollment.contact_id, enrollment.entry_key, enrollment.entered_at):
                ended[enrollment.pk] = (enrollment, goal_reason(event))
                break
    enrollments_end(list(ended.values()), state=EnrollmentState.CONVERTED, outcome=TraceOutcome.CONVERTED, now=now)


def enrollments_end(ended: list[tuple[Enrollment, str]], *, state: str, outcome: str, now: dt.datetime) -> int:
    """End these live enrollments with a reason each; the trace says why. Enrollments ended in
    the meantime are left as they are."""
    if not ended:
        return 0
    ids = [enrollment.pk for enrollment, _reason in ended]
    reasons = [reason[:200] for _enrollment, reason in ended]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE automations_enrollment e SET state = %s, ended_at = %s, end_reason = v.reason, due_at = NULL,
                   wait_event = '', wait_key = ''
            FROM unnest(%s::bigint[], %s::text[]) AS v(id, reason)
            WHERE e.id = v.id AND e.ended_at IS NULL
            RETURNING e.id, e.workspace_id, e.series_id, e.step_key, v.reason
            """,
            [state, now, ids, reasons],
        )
        rows = cursor.fetchall()
    Trace.objects.bulk_create(
        Trace(
            workspace_id=ws,
            enrollment_id=id_,
            series_id=series,
            step_key=step,
            ran_at=now,
            outcome=outcome,
            reason=reason,
        )
        for id_, ws, series, step, reason in rows
    )
    return len(rows)


def _events_matching(
    events: list[Event], name: str, where: list[dict[str, Any]] | None, workspace: Workspace, now: dt.datetime
) -> list[Event]:
    """Those of `events` named `name` that pass the property filters (one query when any)."""
    candidates = [e for e in events if e.name == name]
    if not candidates or not where:
        return candidates
    clock_ = RuleContext(workspace, now=now).clock
    kept = set(
        Event.objects.filter(property_filters_q(where, clock_), pk__in=[e.pk for e in candidates]).values_list(
            "pk", flat=True
        )
    )
    return [e for e in candidates if e.pk in kept]


def _wake_waits(workspace_id: int, events: list[Event], now: dt.datetime) -> list[int]:
    """Enrollments waiting for one of these events (by contact and name, on the index): the
    ones whose step's key and property filters the event meets are marked met and due now."""
    waiting = list(
        Enrollment.objects.filter(
            contact_id__in={e.contact_id for e in events},
            wait_event__in={e.name for e in events},
            ended_at__isnull=True,
            workspace_id=workspace_id,
        ).only("id", "version_id", "step_key", "contact_id", "wait_event", "wait_key", "entered_at")
    )
    if not waiting:
        return []
    versions = {v.pk: v for v in SeriesVersion.objects.filter(pk__in={w.version_id for w in waiting})}
    workspace = Workspace.objects.get(pk=workspace_id)
    met: dict[int, int] = {}
    # The events each waiting step accepts, property filters applied once per step.
    accepted: dict[tuple[int, str], list[Event]] = {}
    for enrollment in waiting:
        step = versions[enrollment.version_id].step(enrollment.step_key) or {}
        place = (enrollment.version_id, enrollment.step_key)
        if place not in accepted:
            accepted[place] = _events_matching(events, enrollment.wait_event, step.get("where"), workspace, now)
        came = next(
            (
                e
                for e in accepted[place]
                if e.contact_id == enrollment.contact_id
                and e.occurred_at >= enrollment.entered_at
                and (
                    not step.get("key_property")
                    or property_text(e.properties, step["key_property"]) == enrollment.wait_key
                )
            ),
            None,
        )
        if came is not None:
            met[enrollment.pk] = came.pk
    if not met:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE automations_enrollment e SET wait_met_event_id = v.event, due_at = %s
            FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, event)
            WHERE e.id = v.id AND e.ended_at IS NULL AND e.wait_event <> ''
            RETURNING e.id
            """,
            [now, list(met), list(met.values())],
        )
        return [row[0] for row in cursor.fetchall()]


def _enroll_from_events(series: Series, event_ids: list[int], now: dt.datetime) -> list[int]:
    trigger = series.trigger
    ctx = RuleContext(series.workspace, now=now)
    events = Event.objects.filter(
        property_filters_q(trigger.get("where") or [], ctx.clock),
        workspace_id=series.workspace_id,
        pk__in=event_ids,
        contact_id__isnull=False,
    ).values("pk")
    ids_sql, ids_params = events.query.sql_with_params()
    key = trigger.get("key") or ""
    # An event enrolls once per series: a batch handed over again (a re-delivered task, a
    # replay) finds the enrollment it made, even one that has ended since. And only events
    # that happened since the series first went live (or just before: on their way then), and
    # not long ago, start it: history sent late never mails about last month's cart.
    sql = (
        "SELECT ev.contact_id, "  # noqa: S608 — fixed clauses and Django's own compilation; values are parameters
        "CASE WHEN %s = '' THEN '' ELSE left(coalesce(ev.properties ->> %s, ''), 200) END AS entry_key, "
        "ev.properties AS entry_data, ev.id AS entry_event_id "
        f"FROM audiences_event ev WHERE ev.id IN ({ids_sql}) "
        "AND ev.occurred_at >= (SELECT min(v.published_at) FROM automations_seriesversion v WHERE v.series_id = %s) "
        "- %s AND ev.occurred_at >= %s"
    )
    return enrollments_insert(
        series, sql, [key, key, *ids_params, series.pk, BEFORE_LIVE, now - MAX_EVENT_AGE], now, once_per_event=True
    )


@transaction.atomic
def contacts_subscribed(*, workspace_id: int, contact_ids: Collection[int], mailing_list_id: int) -> list[int]:
    """List-join triggers: contacts whose subscription to the list is now confirmed."""
    now = clock.now()
    due: list[int] = []
    for one in live_series(workspace_id, "list"):
        if one.trigger.get("list") != mailing_list_id:
            continue
        contacts = Contact.objects.filter(
            workspace_id=workspace_id,
            pk__in=list(contact_ids),
            subscriptions__mailing_list_id=mailing_list_id,
            subscriptions__status=SubscriptionStatus.SUBSCRIBED,
        )
        sql, params = candidates_from_contacts(contacts)
        due += enrollments_insert(one, sql, params, now)
    return due


@transaction.atomic
def segment_changed(
    *, workspace_id: int, segment_id: int, entered: Collection[int], exited: Collection[int]
) -> list[int]:
    now = clock.now()
    due: list[int] = []
    for one in live_series(workspace_id, "segment"):
        if one.trigger.get("segment") != segment_id:
            continue
        ids = entered if one.trigger.get("on", "enter") == "enter" else exited
        if not ids:
            continue
        sql, params = candidates_from_contacts(Contact.objects.filter(workspace_id=workspace_id, pk__in=list(ids)))
        due += enrollments_insert(one, sql, params, now)
    return due


@transaction.atomic
def contacts_left(
    *, workspace_id: int, contact_ids: Collection[int], reason: str, mailing_list_id: int | None = None
) -> int:
    """Unsubscribed (from all marketing, or from the list a list-triggered series is about) or
    suppressed: their live enrollments end as exited. Transactional series go on: a receipt is
    not marketing."""
    series = Series.objects.filter(workspace_id=workspace_id).exclude(kind="transactional")
    if mailing_list_id is not None:
        series = series.filter(trigger__type="list", trigger__list=mailing_list_id)
    enrollments = Enrollment.objects.filter(
        series__in=series, contact_id__in=list(contact_ids), ended_at__isnull=True, workspace_id=workspace_id
    ).only("id")
    return enrollments_end(
        [(e, reason) for e in enrollments], state=EnrollmentState.EXITED, outcome=TraceOutcome.EXITED, now=clock.now()
    )


@transaction.atomic
def promos_start(*, now: dt.datetime | None = None) -> list[tuple[int, list[int]]]:
    """Promo series whose time has come enroll their whole audience once (a locked row: two
    beats never start one promo twice)."""
    now = now or clock.now()
    started = []
    candidates = (
        Series.objects.select_for_update(skip_locked=True)
        .select_related("workspace", "live_version")
        .filter(status=SeriesStatus.LIVE, trigger__type="promo", started_at__isnull=True, live_version__isnull=False)
    )
    for one in candidates:
        at = dt.datetime.fromisoformat(one.trigger["at"])
        if at > now:
            continue
        if one.trigger.get("segment"):
            contacts = Contact.objects.filter(
                workspace_id=one.workspace_id,
                segment_memberships__segment_id=one.trigger["segment"],
                segment_memberships__exited_at__isnull=True,
            )
        else:
            contacts = Contact.objects.filter(
                Q(subscriptions__mailing_list_id=one.trigger["list"])
                & Q(subscriptions__status=SubscriptionStatus.SUBSCRIBED),
                workspace_id=one.workspace_id,
            )
        sql, params = candidates_from_contacts(contacts)
        ids = enrollments_insert(one, sql, params, now)
        Series.objects.filter(pk=one.pk).update(started_at=now)
        started.append((one.pk, ids))
    return started
