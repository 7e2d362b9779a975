"""The same figures as the rollups, counted live over the raw send log and events: what the
tests compare the rollups with and the benchmark races them against. Never for pages: it reads
every message of the period (DESIGN rule 10)."""

# SQL here is built from table names and analytics.kpis' constants only; values are parameters.
# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from analytics.attribution import PERIOD_KEYS_SQL, SETTINGS_CTE, attributed_orders_sql, settings_params
from analytics.kpis import (
    COUNTER_NAMES,
    EVENT_FLAGS_SQL,
    SENT_MOMENT_SQL,
    TEST_MESSAGE_SQL,
    Flag,
    Totals,
    flags_sql_sum,
)
from analytics.rollups import DIMENSIONS_SQL, ENROLLMENT_JOIN, ZONES_CTE, zones_params
from campaigns.models import Message, MessageEvent
from esp.models import Workspace

Key = tuple[dt.date, str, int, str, int]

_LIVE = f"""
WITH {ZONES_CTE}
SELECT day, kind, object_id, step_key, template_id, {flags_sql_sum("flags")} FROM (
    SELECT {DIMENSIONS_SQL},
           CASE WHEN m.sent_at IS NOT NULL THEN {int(Flag.SENT)} ELSE 0 END
           | coalesce(bit_or({EVENT_FLAGS_SQL}) FILTER (WHERE e.id IS NOT NULL), 0) AS flags
    FROM {Message._meta.db_table} m
    JOIN zones z ON z.workspace_id = m.workspace_id
    {ENROLLMENT_JOIN}
    LEFT JOIN {MessageEvent._meta.db_table} e ON e.message_id = m.id
    WHERE m.workspace_id = %(workspace)s AND NOT {TEST_MESSAGE_SQL}
      AND (%(start)s::timestamptz IS NULL OR {SENT_MOMENT_SQL} >= %(start)s::timestamptz)
      AND (%(end)s::timestamptz IS NULL OR {SENT_MOMENT_SQL} < %(end)s::timestamptz)
    GROUP BY m.id, z.tz, en.series_id
) x WHERE flags <> 0
GROUP BY day, kind, object_id, step_key, template_id
"""


def live_rows(
    *, workspace: Workspace, since: dt.date | None = None, until: dt.date | None = None
) -> dict[Key, dict[str, int]]:
    """(day, kind, object id, step key, template id) -> counters, as DailyRollup holds them."""
    zone = workspace.zone
    params: dict[str, Any] = {
        "workspace": workspace.pk,
        "start": dt.datetime.combine(since, dt.time(), tzinfo=zone) if since else None,
        "end": dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=zone) if until else None,
        **zones_params([workspace.pk]),
    }
    with connection.cursor() as cursor:
        cursor.execute(_LIVE, params)
        rows = cursor.fetchall()
    return {tuple(row[:5]): dict(zip(COUNTER_NAMES, row[5:], strict=True)) for row in rows}  # type: ignore[misc]


def live_totals(*, workspace: Workspace, since: dt.date | None = None, until: dt.date | None = None) -> Totals:
    total = Totals()
    for counters in live_rows(workspace=workspace, since=since, until=until).values():
        total = total + Totals.of(counters)
    return total


def _live_orders_sql() -> str:
    return f"WITH {SETTINGS_CTE}, keys AS ({PERIOD_KEYS_SQL}) {attributed_orders_sql('keys', pinned=False)}"


def live_money(*, workspace: Workspace) -> dict[Key, tuple[int, Any]]:
    """(day, kind, object id, step key, template id) -> (conversions, revenue), as DailyRollup
    holds them, every order of the workspace attributed from the raw rows (rows with money)."""
    params = {"workspace": workspace.pk, "start": None, "end": None, **settings_params([workspace.pk])}
    sql = f"""
        SELECT day, kind, object_id, step_key, template_id, count(*) FILTER (WHERE counts), sum(amount - refunded)
        FROM ({_live_orders_sql()}) a WHERE message_id IS NOT NULL
        GROUP BY day, kind, object_id, step_key, template_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {tuple(row[:5]): (row[5], row[6]) for row in rows if row[5] or row[6]}  # type: ignore[misc]


def live_orders(*, workspace: Workspace) -> dict[dt.date, tuple[int, Any]]:
    """Order day -> (orders, revenue) of every order of the workspace, from the raw rows."""
    params = {"workspace": workspace.pk, "start": None, "end": None, **settings_params([workspace.pk])}
    sql = f"""
        SELECT order_day, count(*) FILTER (WHERE counts), sum(amount - refunded)
        FROM ({_live_orders_sql()}) a GROUP BY order_day
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
