"""What analytics hears from the layers below: the messages the send loop settled, and the
contacts whose events were stored (their orders feed the journey and cohorts)."""

from __future__ import annotations

from analytics.journey import contacts_note_changed
from analytics.rollups import messages_note_settled
from audiences import hooks as audience_hooks
from campaigns import hooks


def _settled(payload: hooks.MessagesSettled) -> None:
    # One INSERT of ids, in the sending worker: the refresh does the rest.
    messages_note_settled(payload.message_ids)


def _events_stored(payload: audience_hooks.EventsStored) -> None:
    # One INSERT of ids; the journey refresh recomputes their months.
    contacts_note_changed(payload.workspace_id, payload.contact_ids)


def register() -> None:
    hooks.messages_settled.subscribe(_settled)
    audience_hooks.events_stored.subscribe(_events_stored)
