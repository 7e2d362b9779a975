"""The customer journey's rollups: orders per contact and month (CustomerMonth), the stages month
by month with the flow between them (JourneySnapshot, JourneyFlow), cohorts (analytics.cohorts)
and list growth (AudienceDay). Pages read only these tables (DESIGN rule 10).

Stages are the lifecycle stages of audiences.facts (one definition: `_stage_sql`, with the
workspace's thresholds), read at the end of each month from the orders up to then: a contact
is a *prospect* (attraction) until its first order, then a first-time customer (first
relationship), a repeat customer (customer) and a loyal one, or at risk / lapsed when its last
order is old enough. A month's stage counts are therefore recomputed from the order history
(the current thresholds, also for old months); RFM segments cannot be (they are quintiles of
that moment's customers), so each month keeps what the nightly scoring said during it.

How they stay fresh: audiences' "events stored" hook writes the contacts whose events changed
to PendingCustomer; the refresh (beat, every minute) recomputes those contacts' CustomerMonth
rows from all their order events (as purchase facts are recomputed: refunds and late events
give the same rows as events in order), then the figures of the workspaces they belong to.
The nightly rebuild redoes every workspace from the raw events (time alone moves customers
into "at risk"; a hook lost in a crash is caught there).
"""

# SQL here is built from constants and table names only; values are parameters.
# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from analytics.journey_models import AudienceDay, JourneyFlow, JourneySnapshot, PendingCustomer, SnapshotKind

# The lifecycle stage's one definition and its parameters (audiences.facts.lifecycle).
from audiences.facts.lifecycle import _stage_params, _stage_sql, lifecycle_thresholds
from audiences.facts.purchases import ORDER_COMPLETED, ORDER_REFUNDED, event_amount_sql
from audiences.insights.selectors import insight_figures
from audiences.models import LifecycleStage
from esp.models import Workspace

JOURNEY_LOCK = 0x6A6F75726E  # "journ": one journey refresh or rebuild per workspace at a time
MAX_MONTHS = 36  # the history the journey and cohort tables cover
PENDING_BATCH = 20_000
NEW = "new"  # the flows' source for contacts who arrived during the month

# The journey's stages in order (the four stages, then the ways out).
STAGES: tuple[str, ...] = (
    LifecycleStage.PROSPECT,
    LifecycleStage.FIRST_TIME,
    LifecycleStage.REPEAT,
    LifecycleStage.LOYAL,
    LifecycleStage.AT_RISK,
    LifecycleStage.LAPSED,
)
CUSTOMER_STAGES = STAGES[1:]

# --- orders per contact and month ------------------------------------------------------------

# Orders as audiences.facts.purchases reads them: "Order Completed" keyed by order_id (a repeat
# counts once, its earliest event), refunds by order_id taken off (a refund without an amount,
# or refunds adding up to the whole, and the order no longer counts). An order counts in the
# month it was placed (in the workspace's zone), its refunds with it.
_ORDERS = f"""
WITH raw AS (
    SELECT e.id, e.contact_id, e.name, e.occurred_at,
           NULLIF(btrim(e.properties ->> 'order_id'), '') AS order_id,
           {event_amount_sql("e.properties")} AS amount
    FROM audiences_event e
    WHERE e.workspace_id = %(ws)s AND e.type = 'track' AND e.name IN (%(completed)s, %(refunded)s)
      AND e.contact_id IS NOT NULL AND {{contacts}}
), keyed AS (
    SELECT r.*, CASE WHEN r.name = %(completed)s THEN COALESCE(r.order_id, 'event:' || r.id) ELSE r.order_id END
           AS order_key
    FROM raw r
), orders AS (
    SELECT contact_id, order_key,
           min(occurred_at) FILTER (WHERE name = %(completed)s) AS occurred_at,
           (array_agg(COALESCE(amount, 0) ORDER BY occurred_at, id) FILTER (WHERE name = %(completed)s))[1]
               AS amount,
           bool_or(amount IS NULL) FILTER (WHERE name = %(refunded)s) AS full_refund,
           sum(amount) FILTER (WHERE name = %(refunded)s) AS refund_amount
    FROM keyed WHERE order_key IS NOT NULL
    GROUP BY contact_id, order_key
    HAVING bool_or(name = %(completed)s)
), counted AS (
    SELECT contact_id, occurred_at,
           amount - CASE WHEN full_refund THEN amount ELSE LEAST(COALESCE(refund_amount, 0), amount) END AS net
    FROM orders
    WHERE NOT COALESCE(full_refund OR (amount > 0 AND refund_amount >= amount), false)
)
INSERT INTO analytics_customermonth (workspace_id, contact_id, month, orders, revenue, last_order_at)
SELECT %(ws)s, contact_id, date_trunc('month', occurred_at AT TIME ZONE %(tz)s)::date, count(*), sum(net),
       max(occurred_at)
FROM counted
GROUP BY contact_id, 3
"""
_BATCH = "e.contact_id IN (SELECT unnest(%(ids)s::bigint[]))"


def _params(workspace: Workspace) -> dict[str, Any]:
    return {"ws": workspace.pk, "tz": workspace.zone.key, "completed": ORDER_COMPLETED, "refunded": ORDER_REFUNDED}


def _lock(cursor: Any, workspace_id: int) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [JOURNEY_LOCK % 2_147_483_647, workspace_id])


def customer_months_refresh(*, workspace: Workspace, contact_ids: Collection[int]) -> None:
    """Recompute the CustomerMonth rows of these contacts from all their order events."""
    ids = sorted({int(pk) for pk in contact_ids})
    if not ids:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, workspace.pk)
        params = {**_params(workspace), "ids": ids}
        cursor.execute(
            "DELETE FROM analytics_customermonth WHERE workspace_id = %(ws)s "
            "AND contact_id IN (SELECT unnest(%(ids)s::bigint[]))",
            params,
        )
        cursor.execute(_ORDERS.replace("{contacts}", _BATCH), params)


def customer_months_rebuild(*, workspace: Workspace) -> None:
    """Recompute every CustomerMonth row of the workspace from its order events."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, workspace.pk)
        cursor.execute("DELETE FROM analytics_customermonth WHERE workspace_id = %s", [workspace.pk])
        cursor.execute(_ORDERS.replace("{contacts}", "true"), _params(workspace))


def contacts_note_changed(workspace_id: int, contact_ids: Iterable[int]) -> None:
    """Write down contacts whose events changed, for the next refresh (one statement)."""
    ids = sorted({int(pk) for pk in contact_ids})
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_pendingcustomer (contact_id, workspace_id) "
            "SELECT unnest(%s::bigint[]), %s ON CONFLICT DO NOTHING",
            [ids, workspace_id],
        )


# --- months ----------------------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def months(first: dt.date, last: dt.date) -> list[dt.date]:
    return [add_months(first, n) for n in range(months_between(first, last) + 1)]


# --- stages month by month -------------------------------------------------------------------

# Per customer and month from its first order to this month: the stage at the month's end (now,
# for this month) from the orders up to then, and the stage at the end of the month before
# (for its first month: "new" when it arrived that month, else "prospect"). Grouped by month.
_STAGE_GRID = """
WITH cm AS (
    SELECT contact_id, month, orders, last_order_at FROM analytics_customermonth
    WHERE workspace_id = %(ws)s AND month <= %(last)s
), firsts AS (
    SELECT cm.contact_id, min(cm.month) AS first_month,
           least(min(cm.month), date_trunc('month', c.created_at AT TIME ZONE %(tz)s)::date) AS arrived
    FROM cm JOIN audiences_contact c ON c.id = cm.contact_id
    GROUP BY cm.contact_id, c.created_at
), grid AS (
    SELECT f.contact_id, f.arrived, g.month::date AS month,
           least((g.month + interval '1 month') AT TIME ZONE %(tz)s, %(now)s) AS ref,
           sum(coalesce(cm.orders, 0)) OVER w AS o, max(cm.last_order_at) OVER w AS l
    FROM firsts f
    CROSS JOIN LATERAL generate_series(f.first_month, %(last)s::date, interval '1 month') AS g(month)
    LEFT JOIN cm ON cm.contact_id = f.contact_id AND cm.month = g.month::date
    WINDOW w AS (PARTITION BY f.contact_id ORDER BY g.month)
), staged AS (
    SELECT contact_id, arrived, month, {stage} AS stage FROM grid
), moved AS (
    SELECT month, stage,
           coalesce(lag(stage) OVER (PARTITION BY contact_id ORDER BY month),
                    CASE WHEN arrived = month THEN 'new' ELSE 'prospect' END) AS source
    FROM staged
)
SELECT month, source, stage, count(*) FROM moved WHERE month >= %(first)s GROUP BY month, source, stage
"""

# Contacts by the month they arrived: made, or their first order when that came earlier (a
# shop's history imported after the fact).
_ARRIVALS = """
SELECT date_trunc('month', least(c.created_at, f.first_order) AT TIME ZONE %(tz)s)::date AS month, count(*)
FROM audiences_contact c
LEFT JOIN (SELECT contact_id, min(last_order_at) AS first_order
           FROM analytics_customermonth WHERE workspace_id = %(ws)s GROUP BY contact_id) f ON f.contact_id = c.id
WHERE c.workspace_id = %(ws)s AND least(c.created_at, f.first_order) < %(now)s
GROUP BY 1
"""

# This month's measures: customers who ordered, those of them who had ordered before, orders.
_MEASURES = """
SELECT cm.month, count(*), count(*) FILTER (WHERE f.first_month < cm.month), sum(cm.orders), sum(cm.revenue)
FROM analytics_customermonth cm
JOIN (SELECT contact_id, min(month) AS first_month FROM analytics_customermonth
      WHERE workspace_id = %(ws)s GROUP BY contact_id) f ON f.contact_id = cm.contact_id
WHERE cm.workspace_id = %(ws)s AND cm.month BETWEEN %(first)s AND %(last)s
GROUP BY cm.month
"""

MEASURES = ("arrived", "ordering", "returning", "orders")


@dataclass(frozen=True)
class JourneyFigures:
    """What the aggregate wrote, for tests: {month: {stage: contacts}} and the flows."""

    stages: dict[dt.date, dict[str, int]]
    flows: dict[tuple[dt.date, str, str], int]
    measures: dict[dt.date, dict[str, int]]


def journey_aggregate(*, workspace: Workspace, now: dt.datetime | None = None) -> JourneyFigures:
    """Recompute the workspace's stage snapshots, flows and monthly measures of the last
    MAX_MONTHS months from CustomerMonth and its contacts, this month's RFM snapshot from the
    scoring's figures, and its cohorts (analytics.cohorts)."""
    from analytics.cohorts import cohorts_aggregate

    now = now or timezone.now()
    this_month = month_start(now.astimezone(workspace.zone).date())
    first = add_months(this_month, -(MAX_MONTHS - 1))
    thresholds = lifecycle_thresholds(workspace_id=workspace.pk)
    params = {
        **_params(workspace),
        **_stage_params(thresholds, now),
        "now": now,
        "first": first,
        "last": this_month,
    }
    stage_sql = _stage_sql("o", "l").replace("%(now)s", "ref")
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, workspace.pk)
        cursor.execute(_STAGE_GRID.replace("{stage}", stage_sql), params)
        grid = cursor.fetchall()
        cursor.execute(_ARRIVALS, params)
        arrivals_rows = cursor.fetchall()
        cursor.execute(_MEASURES, params)
        measure_rows = cursor.fetchall()
        figures = _assemble(first, this_month, grid, arrivals_rows, measure_rows)
        _write(workspace, this_month, first, figures, now)
        cohorts_aggregate(workspace=workspace, cursor=cursor, first=first, last=this_month)
    return figures


def _assemble(
    first: dt.date, last: dt.date, grid: list[Any], arrivals_rows: list[Any], measure_rows: list[Any]
) -> JourneyFigures:
    arrivals: dict[dt.date, int] = defaultdict(int)
    before_first = 0
    for month, n in arrivals_rows:
        if month < first:
            before_first += n
        else:
            arrivals[month] += n
    customers: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    entered_from: dict[tuple[dt.date, str], int] = defaultdict(int)
    flows: dict[tuple[dt.date, str, str], int] = {}
    for month, source, stage, n in grid:
        customers[month][stage] += n
        flows[(month, source, stage)] = n
        if source in (NEW, LifecycleStage.PROSPECT):
            entered_from[(month, source)] += n
    # Prospects: every contact arrived by then who has not ordered yet.
    stages: dict[dt.date, dict[str, int]] = {}
    measures: dict[dt.date, dict[str, int]] = {}
    arrived_total = before_first
    # Customers whose first order came before the window still count as customers.
    first_month_customers = sum(
        n for (month, source, _stage), n in flows.items() if month == first and source not in (NEW, "prospect")
    )
    ever_customers_before = first_month_customers
    previous_prospects: int | None = None
    for month in months(first, last):
        arrived_total += arrivals.get(month, 0)
        new_customers = entered_from.get((month, NEW), 0) + entered_from.get((month, LifecycleStage.PROSPECT), 0)
        ever_customers = ever_customers_before + new_customers
        prospects = max(arrived_total - ever_customers, 0)
        row = {stage: customers[month].get(stage, 0) for stage in CUSTOMER_STAGES}
        stages[month] = {LifecycleStage.PROSPECT: prospects, **row}
        new_prospects = max(arrivals.get(month, 0) - entered_from.get((month, NEW), 0), 0)
        if new_prospects:
            flows[(month, NEW, LifecycleStage.PROSPECT)] = new_prospects
        if previous_prospects is not None:
            stayed = max(previous_prospects - entered_from.get((month, LifecycleStage.PROSPECT), 0), 0)
            if stayed:
                flows[(month, LifecycleStage.PROSPECT, LifecycleStage.PROSPECT)] = stayed
        previous_prospects = prospects
        ever_customers_before = ever_customers
        measures[month] = {"arrived": arrivals.get(month, 0), "ordering": 0, "returning": 0, "orders": 0}
    for month, ordering, returning, orders, _revenue in measure_rows:
        measures[month] = {**measures.get(month, {}), "ordering": ordering, "returning": returning, "orders": orders}
    # Flows out of the window's first month have no month before them inside the window.
    flows = {key: n for key, n in flows.items() if key[0] != first or key[1] in (NEW, LifecycleStage.PROSPECT)}
    return JourneyFigures(stages, flows, measures)


def _write(
    workspace: Workspace, this_month: dt.date, first: dt.date, figures: JourneyFigures, now: dt.datetime
) -> None:
    JourneySnapshot.objects.filter(workspace=workspace, kind__in=[SnapshotKind.STAGE, SnapshotKind.MEASURE]).delete()
    JourneyFlow.objects.filter(workspace=workspace).delete()
    rows = [
        JourneySnapshot(
            workspace=workspace, month=month, kind=SnapshotKind.STAGE, value=stage, contacts=n, taken_at=now
        )
        for month, counts in figures.stages.items()
        for stage, n in counts.items()
    ]
    rows += [
        JourneySnapshot(
            workspace=workspace, month=month, kind=SnapshotKind.MEASURE, value=name, contacts=n, taken_at=now
        )
        for month, values in figures.measures.items()
        for name, n in values.items()
    ]
    JourneySnapshot.objects.bulk_create(rows)
    JourneyFlow.objects.bulk_create(
        JourneyFlow(workspace=workspace, month=month, source=source, target=target, contacts=n)
        for (month, source, target), n in figures.flows.items()
    )
    rfm_snapshot_take(workspace=workspace, month=this_month, now=now)


def rfm_snapshot_take(*, workspace: Workspace, month: dt.date, now: dt.datetime) -> None:
    """This month's RFM segments, as the scoring last counted them (past months stay as they
    were taken)."""
    stored = insight_figures(workspace=workspace)
    if stored is None:
        return
    JourneySnapshot.objects.filter(workspace=workspace, month=month, kind=SnapshotKind.RFM).delete()
    JourneySnapshot.objects.bulk_create(
        JourneySnapshot(workspace=workspace, month=month, kind=SnapshotKind.RFM, value=segment, contacts=int(v[0]),
                        taken_at=now)
        for segment, v in (stored.rfm_segments or {}).items()
        if segment
    )  # fmt: skip


# --- list growth -----------------------------------------------------------------------------

# Per list and day: sign-ups (the subscription made), confirmations, unsubscribes — from each
# subscription's own moments (a contact who left and came back counts by its last ones). List
# 0 is the workspace: contacts made, contacts who unsubscribed from anything, addresses put on
# the suppression list for a hard bounce or a complaint.
_AUDIENCE = """
WITH moments AS (
    SELECT s.mailing_list_id AS list_id, s.contact_id, s.created_at AS at, 'new' AS what
      FROM audiences_subscription s WHERE s.workspace_id = %(ws)s AND s.created_at >= %(start)s
    UNION ALL
    SELECT s.mailing_list_id, s.contact_id, s.confirmed_at, 'confirmed'
      FROM audiences_subscription s WHERE s.workspace_id = %(ws)s AND s.confirmed_at >= %(start)s
    UNION ALL
    SELECT s.mailing_list_id, s.contact_id, s.unsubscribed_at, 'unsubscribed'
      FROM audiences_subscription s WHERE s.workspace_id = %(ws)s AND s.unsubscribed_at >= %(start)s
    UNION ALL
    SELECT 0, c.id, c.created_at, 'new' FROM audiences_contact c
      WHERE c.workspace_id = %(ws)s AND c.created_at >= %(start)s
    UNION ALL
    SELECT 0, NULL, x.created_at, CASE x.reason WHEN 'hard_bounce' THEN 'bounced' ELSE 'complained' END
      FROM audiences_suppression x
      WHERE x.workspace_id = %(ws)s AND x.created_at >= %(start)s AND x.reason IN ('hard_bounce', 'complaint')
), days AS (
    SELECT list_id, contact_id, (at AT TIME ZONE %(tz)s)::date AS day, what FROM moments
)
INSERT INTO analytics_audienceday (workspace_id, day, list_id, new, confirmed, unsubscribed, bounced, complained)
SELECT %(ws)s, day, list_id, count(*) FILTER (WHERE what = 'new'), count(*) FILTER (WHERE what = 'confirmed'),
       count(*) FILTER (WHERE what = 'unsubscribed'), count(*) FILTER (WHERE what = 'bounced'),
       count(*) FILTER (WHERE what = 'complained')
FROM days GROUP BY day, list_id
UNION ALL
SELECT %(ws)s, day, 0, 0, 0, count(DISTINCT contact_id), 0, 0 FROM days WHERE what = 'unsubscribed' AND list_id <> 0
GROUP BY day
ON CONFLICT (workspace_id, day, list_id) DO UPDATE SET
    new = analytics_audienceday.new + EXCLUDED.new, confirmed = analytics_audienceday.confirmed + EXCLUDED.confirmed,
    unsubscribed = analytics_audienceday.unsubscribed + EXCLUDED.unsubscribed,
    bounced = analytics_audienceday.bounced + EXCLUDED.bounced,
    complained = analytics_audienceday.complained + EXCLUDED.complained
"""


def audience_days_rebuild(*, workspace: Workspace, since: dt.date | None = None) -> None:
    """Recompute list growth from `since` (a day in the workspace's zone; None: all days)."""
    start = dt.datetime.combine(since or dt.date(1970, 1, 1), dt.time(), tzinfo=workspace.zone)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, workspace.pk)
        AudienceDay.objects.filter(workspace=workspace, day__gte=since or dt.date(1970, 1, 1)).delete()
        cursor.execute(_AUDIENCE, {**_params(workspace), "start": start})


# --- the beat's refresh and the rebuild ------------------------------------------------------

RECENT_AUDIENCE_DAYS = 2


def journey_refresh(*, now: dt.datetime | None = None) -> int:
    """Read the contacts the hook wrote down into CustomerMonth and recompute the figures of
    their workspaces (one batch; the next beat takes the rest). Returns contacts read."""
    with transaction.atomic():
        taken = list(
            PendingCustomer.objects.select_for_update(skip_locked=True)
            .order_by("contact_id")
            .values_list("contact_id", "workspace_id")[:PENDING_BATCH]
        )
        if not taken:
            return 0
        PendingCustomer.objects.filter(contact_id__in=[c for c, _w in taken]).delete()
        by_workspace: dict[int, list[int]] = defaultdict(list)
        for contact_id, workspace_id in taken:
            by_workspace[workspace_id].append(contact_id)
        for workspace in Workspace.objects.filter(pk__in=list(by_workspace)):
            customer_months_refresh(workspace=workspace, contact_ids=by_workspace[workspace.pk])
    for workspace in Workspace.objects.filter(pk__in=list(by_workspace)):
        journey_aggregate(workspace=workspace, now=now)
        today = timezone.now().astimezone(workspace.zone).date()
        audience_days_rebuild(workspace=workspace, since=today - dt.timedelta(days=RECENT_AUDIENCE_DAYS))
    return len(taken)


def journey_rebuild(*, workspace: Workspace, now: dt.datetime | None = None) -> JourneyFigures:
    """Everything of the workspace's journey and cohorts again from the raw rows."""
    customer_months_rebuild(workspace=workspace)
    audience_days_rebuild(workspace=workspace)
    return journey_aggregate(workspace=workspace, now=now)


def decimal_or_zero(value: Any) -> Decimal:
    return Decimal(value or 0)
