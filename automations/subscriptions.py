"""What the engine listens to: audiences' hooks, each written down as a PendingHook row and
handed to a task (automations/engine/inbox.py says why the row comes first); and the gate it
sets on the send road for its own messages."""

from __future__ import annotations

from typing import Any

from audiences import hooks
from esp.queue import enqueue_after_commit


def _heard(workspace_id: int, kind: str, payload: dict[str, Any]) -> None:
    from automations.engine.inbox import pending_hook_add
    from automations.tasks import hook_arrived

    enqueue_after_commit(hook_arrived, pending_hook_add(workspace_id=workspace_id, kind=kind, payload=payload))


def _events_stored(payload: hooks.EventsStored) -> None:
    if payload.event_ids:
        _heard(payload.workspace_id, "events", {"event_ids": list(payload.event_ids)})


def _subscribed(payload: hooks.ContactsSubscribed) -> None:
    _heard(
        payload.workspace_id,
        "subscribed",
        {"contact_ids": list(payload.contact_ids), "mailing_list_id": payload.mailing_list_id},
    )


def _segment_changed(payload: hooks.SegmentMembershipChanged) -> None:
    _heard(
        payload.workspace_id,
        "segment",
        {"segment_id": payload.segment_id, "entered": list(payload.entered), "exited": list(payload.exited)},
    )


def _unsubscribed(payload: hooks.ContactsUnsubscribed) -> None:
    _heard(
        payload.workspace_id,
        "left",
        {
            "contact_ids": list(payload.contact_ids),
            "reason": "unsubscribed",
            "mailing_list_id": payload.mailing_list_id,
        },
    )


def _suppressed(payload: hooks.ContactsSuppressed) -> None:
    if payload.contact_ids:
        _heard(
            payload.workspace_id,
            "left",
            {"contact_ids": list(payload.contact_ids), "reason": f"suppressed: {payload.reason}"},
        )


def _stage_changed(payload: hooks.ContactsStageChanged) -> None:
    if payload.contact_ids:
        _heard(
            payload.workspace_id,
            "stage",
            {"field": payload.field, "value": payload.value, "contact_ids": list(payload.contact_ids)},
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
