"""Celery entry points of the series engine: thin, each calls one service."""

from __future__ import annotations

import logging

from celery import shared_task

from automations.engine import dates, events
from automations.engine.inbox import pending_hook_handle, pending_hooks_sweep
from automations.engine.runner import BATCH_SIZE, enrollments_run_all_due, enrollments_run_due
from automations.notify import notifications_send
from automations.webhooks import webhook_deliveries_run_all

logger = logging.getLogger(__name__)


@shared_task(name="automations.hook_arrived")
def hook_arrived(pending_id: int) -> int:
    """A hook of audiences (events stored, a list joined, a segment changed, contacts left),
    written down as a PendingHook row: handle it, then run what fell due."""
    due = pending_hook_handle(pending_id=pending_id)
    if due:
        enrollments_run_all_due(ids=due)
    return len(due)


@shared_task(name="automations.run_enrollments")
def run_enrollments(ids: list[int]) -> int:
    return enrollments_run_all_due(ids=ids)


@shared_task(name="automations.run_due_enrollments")
def run_due_enrollments() -> int:
    """The beat tick (and resume): due enrollments in batches, with SKIP LOCKED so ticks from
    several beats or a re-delivered task share the work instead of doubling it. Promo series
    whose time has come enroll their audience first, and hooks whose task never came (broker
    down, task lost) are handled."""
    for _series, ids in events.promos_start():
        logger.info("promo started: %d entered", len(ids))
    pending_hooks_sweep()
    ran = 0
    while True:
        batch = enrollments_run_due()
        ran += batch
        if batch < BATCH_SIZE:
            return ran


@shared_task(name="automations.deliver_webhooks")
def deliver_webhooks() -> int:
    """The beat tick of outbound webhooks (and the nudge a webhook step sends after commit):
    due deliveries in batches, shared between workers by SKIP LOCKED."""
    return webhook_deliveries_run_all()


@shared_task(name="automations.send_notifications")
def send_notifications(version_id: int, step_key: str, enrollment_ids: list[int]) -> int:
    """The team mail of a notify step, for the enrollments that ran it (after their commit)."""
    return notifications_send(version_id=version_id, step_key=step_key, enrollment_ids=enrollment_ids)


@shared_task(name="automations.run_date_triggers")
def run_date_triggers() -> int:
    """The beat tick of date triggers (birthdays, replenishment): who entered since the last
    check runs at once."""
    entered = 0
    for _series, ids in dates.date_triggers_run():
        if ids:
            enrollments_run_all_due(ids=ids)
        entered += len(ids)
    return entered
