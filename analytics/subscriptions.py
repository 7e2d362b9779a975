"""What analytics hears from the layers below: the messages the send loop settled."""

from __future__ import annotations

from analytics.rollups import messages_note_settled
from campaigns import hooks


def _settled(payload: hooks.MessagesSettled) -> None:
    # One INSERT of ids, in the sending worker: the refresh does the rest.
    messages_note_settled(payload.message_ids)


def register() -> None:
    hooks.messages_settled.subscribe(_settled)
