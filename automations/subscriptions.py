"""What the engine listens to: audiences' hooks, each handed to a task after commit; and the
gate it sets on the send road for its own messages."""

from __future__ import annotations

from audiences import hooks
from esp.queue import enqueue_after_commit


def _events_stored(payload: hooks.EventsStored) -> None:
    from automations.tasks import events_arrived

    if payload.event_ids:
        enqueue_after_commit(events_arrived, payload.workspace_id, list(payload.event_ids))


def _subscribed(payload: hooks.ContactsSubscribed) -> None:
    from automations.tasks import contacts_subscribed

    enqueue_after_commit(contacts_subscribed, payload.workspace_id, list(payload.contact_ids), payload.mailing_list_id)


def _segment_changed(payload: hooks.SegmentMembershipChanged) -> None:
    from automations.tasks import segment_changed

    enqueue_after_commit(
        segment_changed, payload.workspace_id, payload.segment_id, list(payload.entered), list(payload.exited)
    )


def _unsubscribed(payload: hooks.ContactsUnsubscribed) -> None:
    from automations.tasks import contacts_left

    enqueue_after_commit(
        contacts_left, payload.workspace_id, list(payload.contact_ids), "unsubscribed", payload.mailing_list_id
    )


def _suppressed(payload: hooks.ContactsSuppressed) -> None:
    from automations.tasks import contacts_left

    if payload.contact_ids:
        enqueue_after_commit(
            contacts_left, payload.workspace_id, list(payload.contact_ids), f"suppressed: {payload.reason}"
        )


def _stage_changed(payload: hooks.ContactsStageChanged) -> None:
    from automations.tasks import contacts_stage_changed

    enqueue_after_commit(
        contacts_stage_changed, payload.workspace_id, payload.field, payload.value, list(payload.contact_ids)
    )


def register() -> None:
    from automations.gate import step_messages_gate
    from campaigns.delivery import gates
    from campaigns.models import SourceKind

    gates.register(SourceKind.STEP, step_messages_gate)
    hooks.events_stored.subscribe(_events_stored)
    hooks.contacts_subscribed.subscribe(_subscribed)
    hooks.segment_membership_changed.subscribe(_segment_changed)
    hooks.contacts_unsubscribed.subscribe(_unsubscribed)
    hooks.contacts_suppressed.subscribe(_suppressed)
    hooks.contacts_stage_changed.subscribe(_stage_changed)
