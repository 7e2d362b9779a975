"""Keeping the rollups fresh: the incremental refresh (a beat task every 15 s) and the rebuild
of any period (`manage.py analytics_rebuild`). Both are set-based SQL (DESIGN rule 10) and run
one at a time (a transaction-level advisory lock, so PgBouncer's transaction pooling is fine).

How a refresh finds what is new, without scanning the send log:

- *Events*: MessageEvent ids above the watermark (RefreshState.event_id), a batch at a time.
  Ids are handed out before commit, so a row may appear below the watermark after it passed;
  every id range the watermark passed without a committed row is kept as an EventGap and read
  again by each refresh for GAP_LIFETIME.
- *Sends*: the send loop tells which messages it settled (campaigns.hooks.messages_settled);
  the subscriber writes their ids to PendingSent, the refresh takes them off. A message the
  hook missed (a worker killed between its commit and the hook) still counts once any event of
  it arrives, and the nightly rebuild of the last days (tasks.rebuild_recent) settles the rest.

What it adds: the messages touched get their flags OR-ed into their MessageFact (analytics.
kpis.Flag); each fact that changed adds counter(new) − counter(old) to its DailyRollup row.
Reading an event twice, or a second open of a message opened yesterday, changes no flag and so
adds nothing; a late delivery of a message sent last month adds to last month's day.
"""

# SQL here is built from table names and analytics.kpis' constants only; values are parameters.
# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from analytics.kpis import COUNTER_NAMES, EVENT_FLAGS_SQL, SENT_MOMENT_SQL, TEST_MESSAGE_SQL, Flag, flags_sql_sum
from analytics.models import DailyRollup, EventGap, MessageFact, PendingSent, RefreshState
from automations.models import Enrollment
from campaigns.models import Message, MessageEvent, SourceKind
from esp.models import Workspace

logger = logging.getLogger(__name__)

LOCK_KEY = 0x616E616C79  # "analy": one refresh or rebuild at a time
EVENT_BATCH = 50_000
SENT_BATCH = 50_000
GAP_LIFETIME = dt.timedelta(minutes=15)
# A refresh stops taking batches after this long; the next beat goes on from the watermark.
REFRESH_BUDGET_SECONDS = 40.0
# What else a rebuild of a workspace's period rebuilds, in its transaction and under its lock
# (the attribution of orders: analytics.attribution registers itself at start-up).
AFTER_REBUILD: list[Callable[[Workspace, dt.date | None, dt.date | None], None]] = []

_M = Message._meta.db_table
_E = MessageEvent._meta.db_table
_EN = Enrollment._meta.db_table
_FACT = MessageFact._meta.db_table
_ROLLUP = DailyRollup._meta.db_table
_PENDING = PendingSent._meta.db_table
_GAP = EventGap._meta.db_table
_STATE = RefreshState._meta.db_table

# A message's report dimensions (alias m, its enrollment en, its zone z.tz): the kind of its
# source; the broadcast, the series (through the enrollment) or else the template; the step.
_KIND = "left(split_part(m.source, ':', 1), 16)"
_ID_PART = "split_part(m.source, ':', 2)"
DIMENSIONS_SQL = f"""
    ({SENT_MOMENT_SQL} AT TIME ZONE z.tz)::date AS day,
    {_KIND} AS kind,
    CASE {_KIND}
        WHEN '{SourceKind.BROADCAST}' THEN CASE WHEN {_ID_PART} ~ '^[0-9]{{1,18}}$' THEN {_ID_PART}::bigint ELSE 0 END
        WHEN '{SourceKind.STEP}' THEN coalesce(en.series_id, 0)
        ELSE coalesce(m.template_id, 0)
    END AS object_id,
    CASE WHEN {_KIND} = '{SourceKind.STEP}' THEN left(substr(m.source, length({_ID_PART}) + 7), 100) ELSE '' END
        AS step_key,
    coalesce(m.template_id, 0) AS template_id
"""
ENROLLMENT_JOIN = f"""
    LEFT JOIN {_EN} en ON {_KIND} = '{SourceKind.STEP}'
        AND en.id = CASE WHEN {_ID_PART} ~ '^[0-9]{{1,18}}$' THEN {_ID_PART}::bigint END
"""
ZONES_CTE = "zones AS (SELECT * FROM unnest(%(ws)s::bigint[], %(tz)s::text[]) AS z(workspace_id, tz))"
_DIMS = "workspace_id, day, kind, object_id, step_key, template_id"
_ADD_COUNTERS = ", ".join(f"{name} = r.{name} + EXCLUDED.{name}" for name in COUNTER_NAMES)

_REFRESH = f"""
WITH {ZONES_CTE},
ev AS (
    SELECT e.message_id, {EVENT_FLAGS_SQL} AS flags FROM {_E} e WHERE e.id > %(lo)s AND e.id <= %(hi)s
    UNION ALL
    SELECT e.message_id, {EVENT_FLAGS_SQL} FROM {_GAP} g JOIN {_E} e ON e.id BETWEEN g.lo AND g.hi
), pending AS (
    DELETE FROM {_PENDING} p
    WHERE p.message_id IN (SELECT message_id FROM {_PENDING} ORDER BY message_id LIMIT %(sent_batch)s)
    RETURNING p.message_id
), touched AS (
    SELECT message_id, bit_or(flags) AS flags
    FROM (SELECT message_id, flags FROM ev UNION ALL SELECT message_id, 0 FROM pending) t
    GROUP BY message_id
), fresh AS (
    SELECT t.message_id, m.workspace_id, {DIMENSIONS_SQL},
           t.flags | CASE WHEN m.sent_at IS NOT NULL THEN {int(Flag.SENT)} ELSE 0 END AS flags
    FROM touched t
    JOIN {_M} m ON m.id = t.message_id
    JOIN zones z ON z.workspace_id = m.workspace_id
    {ENROLLMENT_JOIN}
    WHERE NOT {TEST_MESSAGE_SQL}
), old AS (
    SELECT f.message_id, f.flags FROM {_FACT} f WHERE f.message_id IN (SELECT message_id FROM fresh)
), moved AS (
    INSERT INTO {_FACT} AS f (message_id, {_DIMS}, flags)
    SELECT message_id, {_DIMS}, flags FROM fresh WHERE flags <> 0
    ON CONFLICT (message_id) DO UPDATE SET flags = f.flags | EXCLUDED.flags
    WHERE (f.flags | EXCLUDED.flags) <> f.flags
    RETURNING f.message_id, f.{_DIMS.replace(", ", ", f.")}, f.flags
)
INSERT INTO {_ROLLUP} AS r ({_DIMS}, {", ".join(COUNTER_NAMES)}, conversions, revenue, updated_at)
SELECT mv.workspace_id, mv.day, mv.kind, mv.object_id, mv.step_key, mv.template_id,
       {flags_sql_sum("mv.flags", "coalesce(o.flags, 0)")}, 0, 0, now()
FROM moved mv LEFT JOIN old o ON o.message_id = mv.message_id
GROUP BY mv.workspace_id, mv.day, mv.kind, mv.object_id, mv.step_key, mv.template_id
ON CONFLICT (workspace_id, day, kind, object_id, step_key, template_id) DO UPDATE
SET {_ADD_COUNTERS}, updated_at = EXCLUDED.updated_at
"""

# The id ranges in (lo, hi] without a committed event now (read before the batch itself, so
# a row that commits in between is read by the batch and by the gap: harmless).
_GAPS = f"""
INSERT INTO {_GAP} (lo, hi, seen_at)
SELECT prev + 1, id - 1, now() FROM (
    SELECT id, lag(id, 1, %(lo)s::bigint) OVER (ORDER BY id) AS prev FROM {_E} WHERE id > %(lo)s AND id <= %(hi)s
) s WHERE id > prev + 1
"""

# The facts of a workspace's messages that went out in [start, end), from the raw rows.
_REBUILD_FACTS = f"""
WITH {ZONES_CTE}
INSERT INTO {_FACT} AS f (message_id, {_DIMS}, flags)
SELECT message_id, {_DIMS}, flags FROM (
    SELECT m.id AS message_id, m.workspace_id, {DIMENSIONS_SQL},
           CASE WHEN m.sent_at IS NOT NULL THEN {int(Flag.SENT)} ELSE 0 END | coalesce(ev.flags, 0) AS flags
    FROM {_M} m
    JOIN zones z ON z.workspace_id = m.workspace_id
    {ENROLLMENT_JOIN}
    LEFT JOIN LATERAL (SELECT bit_or({EVENT_FLAGS_SQL}) AS flags FROM {_E} e WHERE e.message_id = m.id) ev ON true
    WHERE m.workspace_id = %(workspace)s
      AND (%(start)s::timestamptz IS NULL OR {SENT_MOMENT_SQL} >= %(start)s::timestamptz)
      AND (%(end)s::timestamptz IS NULL OR {SENT_MOMENT_SQL} < %(end)s::timestamptz)
      AND NOT {TEST_MESSAGE_SQL}
) x WHERE flags <> 0
ON CONFLICT (message_id) DO UPDATE SET
    day = EXCLUDED.day, kind = EXCLUDED.kind, object_id = EXCLUDED.object_id, step_key = EXCLUDED.step_key,
    template_id = EXCLUDED.template_id, flags = EXCLUDED.flags
"""
_DAY_RANGE = "workspace_id = %(workspace)s AND (%(since)s::date IS NULL OR day >= %(since)s::date) " \
             "AND (%(until)s::date IS NULL OR day <= %(until)s::date)"  # fmt: skip
_REBUILD_ROLLUPS = f"""
INSERT INTO {_ROLLUP} ({_DIMS}, {", ".join(COUNTER_NAMES)}, conversions, revenue, updated_at)
SELECT {_DIMS}, {flags_sql_sum("flags")}, 0, 0, now()
FROM {_FACT} WHERE {_DAY_RANGE}
GROUP BY {_DIMS}
"""


def zones_params(workspace_ids: Iterable[int] | None = None) -> dict[str, Any]:
    """Each workspace's zone as the database spells it (Workspace.zone's UTC fallback)."""
    workspaces = Workspace.objects.only("id", "time_zone")
    if workspace_ids is not None:
        workspaces = workspaces.filter(pk__in=list(workspace_ids))
    pairs = [(w.pk, w.zone.key) for w in workspaces]
    return {"ws": [pk for pk, _ in pairs], "tz": [zone for _, zone in pairs]}


def _lock(*, wait: bool) -> bool:
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
        return bool(cursor.fetchone()[0])  # type: ignore[index]


# --- the send loop's hook ------------------------------------------------------------------


def messages_note_settled(message_ids: Iterable[int]) -> None:
    """Write down messages the send loop settled, for the next refresh (one statement)."""
    ids = sorted({int(pk) for pk in message_ids})
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_PENDING} (message_id) SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING", [ids])


# --- the incremental refresh ---------------------------------------------------------------


@dataclass(frozen=True)
class RefreshResult:
    batches: int
    event_watermark: int
    locked_out: bool = False


def _refresh_batch() -> tuple[bool, int] | None:
    """One batch in one transaction: (more to do, watermark), or None when another refresh or
    a rebuild holds the lock."""
    with transaction.atomic():
        if not _lock(wait=False):
            return None
        state, _ = RefreshState.objects.select_for_update().get_or_create(pk=1)
        lo = state.event_id
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT max(id) FROM (SELECT id FROM {_E} WHERE id > %s ORDER BY id LIMIT %s) s", [lo, EVENT_BATCH]
            )
            found = cursor.fetchone()[0]  # type: ignore[index]
            hi = int(found) if found is not None else lo
            cursor.execute(f"DELETE FROM {_GAP} WHERE seen_at < %s", [timezone.now() - GAP_LIFETIME])
            if hi > lo:
                cursor.execute(_GAPS, {"lo": lo, "hi": hi})
            cursor.execute(_REFRESH, {"lo": lo, "hi": hi, "sent_batch": SENT_BATCH, **zones_params()})
        state.event_id = hi
        state.refreshed_at = timezone.now()
        state.save(update_fields=["event_id", "refreshed_at"])
        more = (hi - lo) >= EVENT_BATCH or PendingSent.objects.exists()
        return more, hi


def rollups_refresh(*, budget_seconds: float = REFRESH_BUDGET_SECONDS) -> RefreshResult:
    """Read what is new since the last refresh into the rollups (see the module docstring),
    batch after batch until caught up or the budget is spent."""
    started = time.monotonic()
    batches = 0
    watermark = 0
    while True:
        outcome = _refresh_batch()
        if outcome is None:
            return RefreshResult(batches, watermark, locked_out=True)
        batches += 1
        more, watermark = outcome
        if not more or time.monotonic() - started > budget_seconds:
            return RefreshResult(batches, watermark)


# --- the rebuild ---------------------------------------------------------------------------


def _start_of(day: dt.date | None, zone: dt.tzinfo) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), tzinfo=zone)


@transaction.atomic
def rollups_rebuild(*, workspace: Workspace, since: dt.date | None = None, until: dt.date | None = None) -> int:
    """Recompute the workspace's facts and rollups of the days since…until (in its zone; open
    ends: all) from the raw send log and events. Waits for a running refresh; the refresh that
    follows re-reads nothing it changed (flags are OR-ed). Returns the rollup rows written."""
    _lock(wait=True)
    zone = workspace.zone
    params: dict[str, Any] = {
        "workspace": workspace.pk,
        "since": since,
        "until": until,
        "start": _start_of(since, zone),
        "end": _start_of(until + dt.timedelta(days=1), zone) if until is not None else None,
        **zones_params([workspace.pk]),
    }
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_FACT} WHERE {_DAY_RANGE}", params)
        cursor.execute(_REBUILD_FACTS, params)
        cursor.execute(f"DELETE FROM {_ROLLUP} WHERE {_DAY_RANGE}", params)
        cursor.execute(_REBUILD_ROLLUPS, params)
        written = cursor.rowcount
    for step in AFTER_REBUILD:
        step(workspace, since, until)
    return written


def rollups_rebuild_all(*, since: dt.date | None = None, until: dt.date | None = None) -> int:
    written = 0
    for workspace in Workspace.objects.order_by("pk"):
        written += rollups_rebuild(workspace=workspace, since=since, until=until)
    return written
