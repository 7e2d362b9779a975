"""Send gates: rules of a higher layer that a message must pass at send time.

campaigns sends for layers it may not import (a series step must not go once its contact left
the series, the series was paused, or the contact no longer matches the series' filter), so
those layers register a gate for the kind of message they make, in AppConfig.ready():

    from campaigns.delivery import gates
    gates.register(SourceKind.STEP, step_gate)

A gate is called once per claimed batch with every message of its kind in that batch, in the
batch's send order, and the engine's now; it answers set-based (a query or two for the whole
batch, never one per message) with {message id: SkipReason value} for the messages that must
not go. Those are settled `skipped` with that reason before any other check: they take no cap
lease and count towards no cap. A message that must not go *yet* (its broadcast is paused) is
answered with a `Hold`: it goes back to the queue, due at the hold's time, its reason noted.
A gate must not write messages itself, and is run in a transaction (a savepoint when the
caller holds one) so a database error in it leaves the batch's connection usable.

A gate that raises, or answers with a reason that is no SkipReason, cannot tell whether its
messages may go: they are neither sent (the contact may have left) nor skipped (the rule may
be fine); they wait the retry backoff and are tried again (campaigns.delivery.retries),
failing with reason `gate_error` when the attempts run out.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction

from campaigns.models import Message, MessageSource, SkipReason

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hold:
    """A gate's answer for a message that must wait rather than be dropped."""

    until: dt.datetime
    reason: str  # a SkipReason value, shown in the send log while it waits


Gate = Callable[[list[Message], dt.datetime], Mapping[int, "str | Hold"]]

_gates: dict[str, list[Gate]] = {}


def register(kind: str, gate: Gate) -> Gate:
    """Check messages whose source is of `kind` (a SourceKind value) with `gate`; registering
    the same gate twice keeps one. Returns the gate (usable as a decorator's body)."""
    registered = _gates.setdefault(str(kind), [])
    if gate not in registered:
        registered.append(gate)
    return gate


@contextmanager
def set_aside() -> Iterator[None]:
    """Run without any registered gate (campaigns' own tests: the layers above test theirs)."""
    saved = {kind: list(registered) for kind, registered in _gates.items()}
    _gates.clear()
    try:
        yield
    finally:
        _gates.clear()
        _gates.update(saved)


def unregister(kind: str, gate: Gate) -> None:
    registered = _gates.get(str(kind), [])
    if gate in registered:
        registered.remove(gate)


@dataclass
class Gated:
    # message id -> SkipReason value: settled `skipped`.
    stopped: dict[int, str] = field(default_factory=dict)
    # message id -> Hold: back to the queue until the hold's time.
    held: dict[int, Hold] = field(default_factory=dict)
    # Messages whose gate failed: held back for the retry backoff.
    failed: set[int] = field(default_factory=set)


def gates_check(messages: list[Message], now: dt.datetime) -> Gated:
    """Run the gates of every kind present in `messages` (one call per gate and kind)."""
    gated = Gated()
    if not _gates:
        return gated
    by_kind: dict[str, list[Message]] = {}
    for message in messages:
        kind = MessageSource.parse(message.source).kind
        if _gates.get(kind):
            by_kind.setdefault(kind, []).append(message)
    for kind, members in by_kind.items():
        ids = {message.id for message in members}
        for gate in list(_gates.get(kind, ())):
            try:
                with transaction.atomic():
                    answer = dict(gate(list(members), now))
                reasons = {verdict.reason if isinstance(verdict, Hold) else verdict for verdict in answer.values()}
                unknown = {reason for reason in reasons if reason not in SkipReason.values}
                if unknown:
                    raise ValueError(f"not a SkipReason: {sorted(unknown)!r}")
            except Exception:
                logger.exception("send gate %r for %r failed; its %d messages wait", gate, kind, len(members))
                gated.failed |= ids
                continue
            for message_id, verdict in answer.items():
                # The first gate that stops a message names the reason; ids of other batches
                # are no gate's to decide here.
                if message_id not in ids:
                    continue
                if isinstance(verdict, Hold):
                    gated.held.setdefault(message_id, verdict)
                else:
                    gated.stopped.setdefault(message_id, verdict)
    # A message one gate stops need not wait for another that failed or holds it: it is not
    # to be sent; one that is held need not wait for a failed gate's retry either.
    gated.held = {message_id: hold for message_id, hold in gated.held.items() if message_id not in gated.stopped}
    gated.failed -= gated.stopped.keys() | gated.held.keys()
    return gated
