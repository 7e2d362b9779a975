"""The send gate of broadcasts: a message of a cancelled broadcast does not go, and one of a
paused broadcast waits for the resume.

Cancelling settles the broadcast's queued messages at once and pausing pushes them out of the
send loop's reach (services.py), and those a worker holds at that moment finish their send. But
a held message can come back to the queue afterwards: recovery puts a dead worker's claims back,
a provider's transient refusal or a failing gate requeues it for the retry backoff (up to an
hour), a cap or quiet hours defer it. Without this gate it would then go out while its broadcast
is paused or after it was cancelled; with it, it is settled `skipped` (`broadcast_cancelled`),
or held (`broadcast_paused`): its due time pushed by PAUSE_SHIFT like the pause's own, so the
resume brings it back at its time.

One query per claimed batch that holds broadcast messages. A source whose key is no broadcast
of the message's workspace (tests and benchmarks queue "broadcast:<anything>") is let through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from campaigns.broadcast_models import Broadcast, BroadcastStatus
from campaigns.delivery.gates import Hold
from campaigns.models import Message, MessageSource, SkipReason

# How far a pause pushes queued messages (and a resume brings them back): anything due later
# than HELD_AFTER from now was pushed by a pause.
PAUSE_SHIFT = dt.timedelta(days=365 * 1000)
HELD_AFTER = dt.timedelta(days=365 * 100)


def broadcast_messages_gate(messages: list[Message], now: dt.datetime) -> Mapping[int, str | Hold]:
    """{message id: broadcast_cancelled or a Hold} for messages of a cancelled or paused broadcast."""
    by_broadcast: dict[tuple[int, int], list[Message]] = {}
    for message in messages:
        key = MessageSource.parse(message.source).key
        if key.isdigit():
            by_broadcast.setdefault((message.workspace_id, int(key)), []).append(message)
    if not by_broadcast:
        return {}
    stopped = Broadcast.objects.filter(
        pk__in={broadcast_id for _workspace, broadcast_id in by_broadcast},
        status__in=(BroadcastStatus.CANCELLED, BroadcastStatus.PAUSED),
    ).values_list("workspace_id", "pk", "status")
    answer: dict[int, str | Hold] = {}
    for workspace_id, broadcast_id, status in stopped:
        for message in by_broadcast.get((workspace_id, broadcast_id), ()):
            if status == BroadcastStatus.CANCELLED:
                answer[message.id] = SkipReason.BROADCAST_CANCELLED
            else:
                answer[message.id] = Hold(message.due_at + PAUSE_SHIFT, SkipReason.BROADCAST_PAUSED)
    return answer
