"""When a message that could not go now is tried again: after a provider's transient refusal,
or when a send gate of a higher layer failed (campaigns.delivery.gates). Both wait the same
growing backoff and give up after the same number of attempts (Message.attempts)."""

from __future__ import annotations

import datetime as dt

from campaigns.delivery.composer import TransientSendError
from campaigns.models import Message, MessageState
from esp import clock

# After the n-th failure the message waits RETRY_BACKOFF[n - 1]; the MAX_ATTEMPTS-th failure
# is final.
RETRY_BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(hours=1))
MAX_ATTEMPTS = 5


def retry_plan(message: Message, *, gave_up: str, now: dt.datetime | None = None) -> tuple[str, str, dt.datetime]:
    """(state, reason, due_at) after one more failed attempt: back to the queue after the
    backoff (on the engine's clock, so a test moves through it), or failed with `gave_up`."""
    attempts = message.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        return MessageState.FAILED, gave_up, message.due_at
    moment = now if now is not None else clock.now()
    return MessageState.QUEUED, "", moment + RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF)) - 1]


def maybe_delivered(error: TransientSendError) -> bool:
    """Whether a transient failure may have come after the provider took the message: then it
    is not sent again (at most once). A provider refusal carries its reply code and is safe to
    retry; a failure without one is the connection's, and a connection that broke during the
    hand-over (SMTP DATA, an HTTP request without an answer) may have delivered. A transport
    that knows better says so with `maybe_delivered`."""
    if error.maybe_delivered is not None:
        return error.maybe_delivered
    return error.code is None
