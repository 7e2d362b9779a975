"""The send gate of broadcasts: a message of a cancelled broadcast does not go.

Cancelling settles the broadcast's queued messages at once, and those a worker holds at that
moment finish their send. But a held message can come back to the queue afterwards, with its
broadcast already cancelled: recovery puts a dead worker's claims back, a provider's transient
refusal or a failing gate requeues it for the retry backoff (up to an hour), a cap or quiet
hours defer it. Without this gate it would then go out, minutes or hours after the cancel; with
it, it is settled `skipped` (`broadcast_cancelled`) when a worker claims it again.

One query per claimed batch that holds broadcast messages. A source whose key is no broadcast
of the message's workspace (tests and benchmarks queue "broadcast:<anything>") is let through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from campaigns.broadcast_models import Broadcast, BroadcastStatus
from campaigns.models import Message, MessageSource, SkipReason


def broadcast_messages_gate(messages: list[Message], now: dt.datetime) -> Mapping[int, str]:
    """{message id: broadcast_cancelled} for messages of a cancelled broadcast."""
    by_broadcast: dict[tuple[int, int], list[int]] = {}
    for message in messages:
        key = MessageSource.parse(message.source).key
        if key.isdigit():
            by_broadcast.setdefault((message.workspace_id, int(key)), []).append(message.id)
    if not by_broadcast:
        return {}
    cancelled = Broadcast.objects.filter(
        pk__in={broadcast_id for _workspace, broadcast_id in by_broadcast}, status=BroadcastStatus.CANCELLED
    ).values_list("workspace_id", "pk")
    return {
        message_id: SkipReason.BROADCAST_CANCELLED for pair in cancelled for message_id in by_broadcast.get(pair, ())
    }
