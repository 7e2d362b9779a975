"""The hooks the engine has heard and not yet handled, as rows (PendingHook).

audiences delivers a hook after its transaction commits, and the engine hands it to a Celery
task. Sent straight to the broker, a hook heard while the broker is down (or whose task is lost)
would be gone: the events are stored and processed, yet no series would ever hear of them.
So a hook is first written down, then its task is sent with the row's id; the task handles it
and deletes the row in one transaction (SKIP LOCKED: a second delivery, or the tick, finds it
taken or gone), and the beat tick handles the rows whose task has not come after a while.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import F

from automations.engine import events, stages
from automations.models import PendingHook
from esp import clock

logger = logging.getLogger(__name__)

# The tick takes a row this long after it was heard: its task normally comes within a second,
# and a busy queue may hold it for a while (taking it twice is safe, only wasted work).
SWEEP_AFTER = dt.timedelta(seconds=60)
# A row whose handling fails (a bug, a database error) is tried again later, each time later.
RETRY_AFTER = dt.timedelta(minutes=1)
MAX_RETRY_DELAY = dt.timedelta(hours=1)
SWEEP_BATCH = 100
# A task handling events takes the other event rows of its workspace waiting then (their tasks
# are queued behind it) up to this many rows: under load, one task per batch of requests
# instead of one per request, whose fixed cost (the workspace's series, the claim, the drain
# started after commit) would otherwise make the queue grow faster than it is worked off.
MERGE_ROWS = 20


def _events(workspace_id: int, payload: dict[str, Any]) -> list[int]:
    return events.events_arrived(workspace_id=workspace_id, event_ids=payload["event_ids"])


def _subscribed(workspace_id: int, payload: dict[str, Any]) -> list[int]:
    return events.contacts_subscribed(
        workspace_id=workspace_id, contact_ids=payload["contact_ids"], mailing_list_id=payload["mailing_list_id"]
    )


def _segment(workspace_id: int, payload: dict[str, Any]) -> list[int]:
    return events.segment_changed(
        workspace_id=workspace_id,
        segment_id=payload["segment_id"],
        entered=payload["entered"],
        exited=payload["exited"],
    )


def _left(workspace_id: int, payload: dict[str, Any]) -> list[int]:
    events.contacts_left(
        workspace_id=workspace_id,
        contact_ids=payload["contact_ids"],
        reason=payload["reason"],
        mailing_list_id=payload.get("mailing_list_id"),
    )
    return []


def _stage(workspace_id: int, payload: dict[str, Any]) -> list[int]:
    return stages.contacts_stage_changed(
        workspace_id=workspace_id, field=payload["field"], value=payload["value"], contact_ids=payload["contact_ids"]
    )


# Each returns the enrollments that are due to run now.
HANDLERS: dict[str, Callable[[int, dict[str, Any]], list[int]]] = {
    "events": _events,
    "subscribed": _subscribed,
    "segment": _segment,
    "left": _left,
    "stage": _stage,
}


def pending_hook_add(*, workspace_id: int, kind: str, payload: dict[str, Any]) -> int:
    """Write a heard hook down; the row's id is what its task carries."""
    if kind not in HANDLERS:
        raise ValueError(f"unknown hook kind {kind!r}")
    now = clock.now()
    return PendingHook.objects.create(
        workspace_id=workspace_id, kind=kind, payload=payload, created_at=now, due_at=now + SWEEP_AFTER
    ).pk


def pending_hook_handle(*, pending_id: int) -> list[int]:
    """Handle one row and delete it, in one transaction; the enrollments due now. A row taken
    by another worker or handled already gives nothing. Events rows of the same workspace
    waiting meanwhile are handled with it (their own tasks then find nothing)."""
    with transaction.atomic():
        row = PendingHook.objects.select_for_update(skip_locked=True).filter(pk=pending_id).first()
        if row is None:
            return []
        rows = [row]
        payload = row.payload
        if row.kind == "events":
            rows += list(
                PendingHook.objects.select_for_update(skip_locked=True)
                .filter(workspace_id=row.workspace_id, kind="events")
                .exclude(pk=row.pk)
                .order_by("id")[: MERGE_ROWS - 1]
            )
            payload = {"event_ids": sorted({i for one in rows for i in one.payload["event_ids"]})}
        due = HANDLERS[row.kind](row.workspace_id, payload)
        PendingHook.objects.filter(pk__in=[one.pk for one in rows]).delete()
    return due


def pending_hooks_sweep(*, limit: int = SWEEP_BATCH) -> list[int]:
    """For the beat tick: rows whose task has not come (broker down, task lost, worker killed),
    each in its own transaction; a row that fails waits longer each time. The enrollments
    due now."""
    now = clock.now()
    ids = list(PendingHook.objects.filter(due_at__lte=now).order_by("due_at").values_list("pk", flat=True)[:limit])
    due: list[int] = []
    for pending_id in ids:
        try:
            due += pending_hook_handle(pending_id=pending_id)
        except Exception:
            logger.exception("pending hook %s failed; tried again later", pending_id)
            attempts = PendingHook.objects.filter(pk=pending_id).values_list("attempts", flat=True).first() or 0
            delay = min(RETRY_AFTER * 2**attempts, MAX_RETRY_DELAY)
            PendingHook.objects.filter(pk=pending_id).update(attempts=F("attempts") + 1, due_at=now + delay)
    return due
