"""Enrolling: one INSERT … SELECT … ON CONFLICT DO NOTHING per series per batch.

Every trigger (an event, a list join, a segment entry, a date, a promo start, the API) gives
candidate rows (contact, entry key, entry data, event id) as a query; this module turns them
into enrollments with the series' rules applied in the same statement:

- the flow filter (the segment compiler's query over those contacts);
- re-entry (once ever, once per N days, every time), per contact and entry key;
- one live enrollment per (series, contact, entry key): the partial unique index makes eight
  identical triggers at once one enrollment, whichever commits first;
- the holdout, drawn from a hash of (series, contact, key): stable, and about the percentage;
- an "entered" trace row for each, in the same statement.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from audiences.segments.compiler import segment_queryset
from audiences.segments.registry import RuleContext
from automations.engine.checks import has_flow_filter
from automations.models import ReEntry, Series, TraceOutcome


def enrollments_insert(
    series: Series,
    candidates_sql: str,
    candidates_params: list[Any],
    now: dt.datetime,
    *,
    once_per_event: bool = False,
) -> list[int]:
    """Enroll the candidates (a query giving contact_id, entry_key, entry_data, entry_event_id)
    in the series' live version; the ids of the new enrollments. `once_per_event`: an event
    that enrolled someone never enrolls them again, whatever the re-entry rule (a hook handled
    twice, after the first enrollment ended, would otherwise start a second one)."""
    version = series.live_version
    if version is None:
        return []
    params: list[Any] = list(candidates_params)
    where = ["ct.workspace_id = %s"]
    params.append(series.workspace_id)
    if has_flow_filter(series):
        flow_sql, flow_params = (
            segment_queryset(
                workspace=series.workspace,
                rules=series.flow_filter,
                context=RuleContext(series.workspace, now=now),
                now=now,
            )
            .order_by()
            .values("pk")
            .query.sql_with_params()
        )
        where.append(f"c.contact_id IN ({flow_sql})")
        params.extend(flow_params)
    if series.re_entry != ReEntry.ALWAYS:
        window = ""
        if series.re_entry == ReEntry.PERIOD and series.re_entry_days:
            window = "AND p.entered_at > %s"
        where.append(
            "NOT EXISTS (SELECT 1 FROM automations_enrollment p WHERE p.series_id = %s AND p.contact_id = c.contact_id "  # noqa: S608 — fixed clauses and Django's own compilation; values are parameters
            f"AND p.entry_key = c.entry_key {window})"
        )
        params.append(series.pk)
        if window:
            params.append(now - dt.timedelta(days=series.re_entry_days or 0))
    if once_per_event:
        where.append(
            "NOT EXISTS (SELECT 1 FROM automations_enrollment q WHERE q.contact_id = c.contact_id "
            "AND q.series_id = %s AND q.entry_event_id = c.entry_event_id)"
        )
        params.append(series.pk)
    start = version.steps["start"]
    params += [
        series.workspace_id, series.pk, version.pk, start, now, now,
        str(series.pk), series.holdout_percent, now,
        now, TraceOutcome.ENTERED,
    ]  # fmt: skip
    sql = f"""
        WITH candidates AS ({candidates_sql}),
        picked AS (
            SELECT DISTINCT ON (c.contact_id, c.entry_key) c.contact_id, c.entry_key, c.entry_data, c.entry_event_id
            FROM candidates c JOIN audiences_contact ct ON ct.id = c.contact_id
            WHERE {" AND ".join(where)}
            ORDER BY c.contact_id, c.entry_key, c.entry_event_id
        ),
        new AS (
            INSERT INTO automations_enrollment (
                workspace_id, series_id, version_id, contact_id, entry_key, entry_data, entry_event_id, state,
                step_key, step_started_at, due_at, wait_event, wait_key, holdout, entered_at, end_reason, hops
            )
            SELECT %s, %s, %s, contact_id, entry_key, entry_data, entry_event_id, 'active', %s, %s, %s, '', '',
                   abs(hashtextextended(%s || ':' || contact_id || ':' || entry_key, 0) %% 100) < %s, %s, '', 0
            FROM picked ORDER BY contact_id
            ON CONFLICT (series_id, contact_id, entry_key) WHERE ended_at IS NULL DO NOTHING
            RETURNING id, workspace_id, series_id, holdout
        )
        INSERT INTO automations_trace (
            workspace_id, enrollment_id, series_id, step_key, ran_at, outcome, reason, branch
        )
        SELECT workspace_id, id, series_id, '', %s, %s, CASE WHEN holdout THEN 'held out' ELSE '' END, '' FROM new
        RETURNING enrollment_id
    """  # noqa: S608 — fixed clauses and Django's own compilation of querysets; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def candidates_from_contacts(
    contacts: QuerySet[Any], *, entry_data: dict[str, Any] | None = None
) -> tuple[str, list[Any]]:
    """Candidates for a trigger that enrolls contacts with no entry key (a list join, a segment
    entry, a promo start): the contacts queryset's ids."""
    ids_sql, ids_params = contacts.order_by().values("pk").query.sql_with_params()
    return (
        f"SELECT x.id AS contact_id, ''::text AS entry_key, %s::jsonb AS entry_data, NULL::bigint AS entry_event_id "  # noqa: S608 — fixed clauses and Django's own compilation; values are parameters
        f"FROM audiences_contact x WHERE x.id IN ({ids_sql})",
        [json.dumps(entry_data or {}), *ids_params],
    )
