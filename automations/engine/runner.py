"""Walking enrollments through their steps.

A run claims due, live enrollments of live series with `FOR UPDATE SKIP LOCKED` and walks them
in one transaction, step after step, until each waits or ends: every trace row, every Message
(in `queued`, sent after commit) and the enrollment's new place commit together. So a task
delivered twice, a second beat or a worker killed mid-run can never run a step twice: the
locked rows are skipped by the others, and a killed run leaves them where they were, with
nothing of its own committed.

The enrollments of a batch are grouped by (version, step) and each group runs as one
set-based call of its step kind.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction

from automations.engine.walk import RunContext, Walker
from automations.models import EnrollmentState, Series, SeriesStatus, SeriesVersion, Trace, TraceOutcome
from automations.steps import STEP_KINDS
from automations.steps.registry import End, Result, Wait
from esp import clock

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# Steps one enrollment may take in one run; the graph allows no loop without a wait, so this
# only bounds a very long chain of instant steps (the rest runs in the next batch).
MAX_STEPS_PER_RUN = 50
# A live enrollment that has taken this many steps is stopped: a loop with a wait that never
# meets its goal would otherwise mail someone forever.
MAX_HOPS = 1000

_COLUMNS = (
    "id, workspace_id, series_id, version_id, contact_id, entry_key, entry_data, entered_at, step_key, "
    "step_started_at, due_at, state, wait_event, wait_key, wait_met_event_id, holdout, hops"
)


def enrollments_run_due(*, ids: Sequence[int] | None = None, limit: int = BATCH_SIZE) -> int:
    """Run one batch of due enrollments (only these `ids` when given); how many were run."""
    now = clock.now()
    with transaction.atomic():
        walkers = _claim(now, limit, ids)
        if not walkers:
            return 0
        _walk(walkers, now)
    return len(walkers)


def enrollments_run_all_due(*, ids: Sequence[int] | None = None, max_batches: int = 1000) -> int:
    """Batches until nothing is due (or `max_batches`); how many enrollments were run."""
    total = 0
    for _batch in range(max_batches):
        ran = enrollments_run_due(ids=ids)
        total += ran
        if ran < BATCH_SIZE:
            break
    return total


def _claim(now: dt.datetime, limit: int, ids: Sequence[int] | None) -> list[Walker]:
    only = "AND e.id = ANY(%(ids)s)" if ids is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {", ".join("e." + c.strip() for c in _COLUMNS.split(","))}
            FROM automations_enrollment e
            JOIN automations_series s ON s.id = e.series_id
            WHERE e.ended_at IS NULL AND e.due_at <= %(now)s AND s.status = %(live)s {only}
            ORDER BY e.due_at
            LIMIT %(limit)s
            FOR UPDATE OF e SKIP LOCKED
            """,  # noqa: S608 — column names and a fixed clause; values are parameters
            {"now": now, "live": SeriesStatus.LIVE, "limit": limit, "ids": list(ids or [])},
        )
        rows = cursor.fetchall()
    walkers = []
    for row in rows:
        (id_, ws, series, version, contact, key, data, entered, step, started, due, state, wait_event, wait_key,
         met, holdout, hops) = row  # fmt: skip
        walkers.append(
            Walker(
                id=id_, workspace_id=ws, series_id=series, version_id=version, contact_id=contact, entry_key=key,
                entry_data=_json_object(data), entered_at=entered, step_key=step,
                step_started_at=started, due_at=due, waiting=state == EnrollmentState.WAITING,
                wait_event=wait_event, wait_key=wait_key, wait_met_event_id=met, holdout=holdout, hops=hops,
                state=state,
                fell_due_at=due,
            )
        )  # fmt: skip
    return walkers


def _json_object(value: Any) -> dict[str, Any]:
    """A jsonb column read by a raw cursor: Django's psycopg2 backend hands jsonb over as text."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _walk(walkers: list[Walker], now: dt.datetime) -> None:
    series = {s.pk: s for s in Series.objects.select_related("workspace").filter(pk__in={w.series_id for w in walkers})}
    versions = {v.pk: v for v in SeriesVersion.objects.filter(pk__in={w.version_id for w in walkers})}
    traces: list[Trace] = []
    pending = walkers
    for _round in range(MAX_STEPS_PER_RUN):
        groups: dict[tuple[int, str], list[Walker]] = defaultdict(list)
        for walker in pending:
            groups[(walker.version_id, walker.step_key)].append(walker)
        moving: list[Walker] = []
        for (version_id, key), group in groups.items():
            version = versions[version_id]
            ctx = RunContext(
                now=now,
                workspace=series[group[0].series_id].workspace,
                series=series[group[0].series_id],
                version=version,
            )
            results = _run_group(version, key, group, ctx)
            for walker in group:
                result = results.get(walker.id)
                if result is None:
                    result = End(EnrollmentState.FAILED, TraceOutcome.FAILED, "the step gave no result")
                if _apply(walker, result, now, traces):
                    moving.append(walker)
        pending = moving
        if not pending:
            break
    for walker in pending:
        # A long chain of instant steps: the rest runs in the next batch.
        walker.due_at = now
        walker.changed = True
    Trace.objects.bulk_create(traces, batch_size=1000)
    _write(walkers)


def _run_group(version: SeriesVersion, key: str, group: list[Walker], ctx: RunContext) -> dict[int, Result]:
    step = version.step(key)
    if step is None or step.get("type") not in STEP_KINDS:
        return {
            w.id: End(EnrollmentState.FAILED, TraceOutcome.FAILED, f"step {key!r} is not in this version")
            for w in group
        }
    over = [w for w in group if w.hops >= MAX_HOPS]
    results: dict[int, Result] = {
        w.id: End(EnrollmentState.FAILED, TraceOutcome.FAILED, "stopped after too many steps") for w in over
    }
    rest = [w for w in group if w.hops < MAX_HOPS]
    if rest:
        # A savepoint: a step kind that fails (a bug, a bad template id in an old version) fails
        # its group, not the whole batch of other series.
        try:
            with transaction.atomic():
                results.update(STEP_KINDS[step["type"]].run(step, rest, ctx))
        except Exception:
            logger.exception("series %s step %s failed", ctx.series.pk, key)
            results.update({w.id: End(EnrollmentState.FAILED, TraceOutcome.FAILED, "the step failed") for w in rest})
    return results


def _trace(
    walker: Walker, now: dt.datetime, outcome: str, reason: str = "", branch: str = "", message_id: int | None = None
) -> Trace:
    return Trace(
        workspace_id=walker.workspace_id, enrollment_id=walker.id, series_id=walker.series_id, step_key=walker.step_key,
        ran_at=now,
        outcome=outcome, reason=reason[:400], branch=branch, message_id=message_id,
    )  # fmt: skip


def _apply(walker: Walker, result: Result, now: dt.datetime, traces: list[Trace]) -> bool:
    """Move the walker by its step's result; True when it goes on to another step now."""
    walker.changed = True
    if isinstance(result, Wait):
        if result.trace and not walker.waiting:
            traces.append(_trace(walker, now, TraceOutcome.WAITING, result.reason))
        walker.state = EnrollmentState.WAITING
        walker.waiting = True
        walker.due_at = result.until
        walker.wait_event, walker.wait_key = result.wait_event, result.wait_key
        return False
    if isinstance(result, End):
        traces.append(_trace(walker, now, result.outcome, result.reason, message_id=result.message_id))
        walker.state = result.state
        walker.ended_at = now
        walker.end_reason = result.reason[:200]
        walker.due_at = None
        walker.wait_event = walker.wait_key = ""
        return False
    traces.append(_trace(walker, now, result.outcome, result.reason, result.branch, result.message_id))
    walker.hops += 1
    walker.wait_event = walker.wait_key = ""
    walker.wait_met_event_id = None
    if result.next is None:
        walker.state = EnrollmentState.COMPLETED
        walker.ended_at = now
        walker.end_reason = "completed"
        walker.due_at = None
        completed = _trace(walker, now, TraceOutcome.COMPLETED)
        completed.step_key = ""
        traces.append(completed)
        return False
    walker.step_key = result.next
    walker.step_started_at = now
    walker.state = EnrollmentState.ACTIVE
    walker.waiting = False
    walker.due_at = now
    return True


def _write(walkers: list[Walker]) -> None:
    changed = [w for w in walkers if w.changed]
    if not changed:
        return
    columns: dict[str, list[Any]] = {
        "id": [w.id for w in changed],
        "state": [w.state for w in changed],
        "step_key": [w.step_key for w in changed],
        "step_started_at": [w.step_started_at for w in changed],
        "due_at": [w.due_at for w in changed],
        "wait_event": [w.wait_event for w in changed],
        "wait_key": [w.wait_key for w in changed],
        "wait_met_event_id": [w.wait_met_event_id for w in changed],
        "ended_at": [w.ended_at for w in changed],
        "end_reason": [w.end_reason for w in changed],
        "hops": [w.hops for w in changed],
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE automations_enrollment e SET
                state = v.state, step_key = v.step_key, step_started_at = v.step_started_at, due_at = v.due_at,
                wait_event = v.wait_event, wait_key = v.wait_key, wait_met_event_id = v.wait_met_event_id,
                ended_at = v.ended_at, end_reason = v.end_reason, hops = v.hops
            FROM unnest(%(id)s::bigint[], %(state)s::text[], %(step_key)s::text[], %(step_started_at)s::timestamptz[],
                        %(due_at)s::timestamptz[], %(wait_event)s::text[], %(wait_key)s::text[],
                        %(wait_met_event_id)s::bigint[], %(ended_at)s::timestamptz[], %(end_reason)s::text[],
                        %(hops)s::int[])
                 AS v(id, state, step_key, step_started_at, due_at, wait_event, wait_key, wait_met_event_id,
                      ended_at, end_reason, hops)
            WHERE e.id = v.id
            """,
            columns,
        )
