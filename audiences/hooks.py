"""What audiences tells the layers above it, without importing them: events stored, segment
membership changed, contacts subscribed, unsubscribed, suppressed or erased, and contacts whose
lifecycle stage or RFM segment changed.

A subscriber registers in its AppConfig.ready():

    from audiences import hooks
    hooks.segment_membership_changed.subscribe(on_segment_change)

Each write path fires its hook once per statement, with every id it touched. Delivery waits for
the transaction to commit (a rolled-back write delivers nothing) and hands the ids over in
batches of at most BATCH_SIZE. Subscribers run in the committing process, one after another:
they should do little (enqueue a task with the ids); one that raises is logged and the others
still run, because the write they hear about is committed either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Generic, Protocol, Self, TypeVar

from django.db import transaction

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
T = TypeVar("T", bound=Any)


def payload_batches(payload: T, size: int, *names: str) -> Iterator[T]:
    """The payload cut into payloads of at most `size` of each named tuple of ids (the tuples
    are cut side by side; there is always at least one, possibly empty, batch)."""
    longest = max(len(getattr(payload, name)) for name in names)
    for start in range(0, max(longest, 1), size):
        yield replace(payload, **{name: getattr(payload, name)[start : start + size] for name in names})  # type: ignore[type-var]


class Payload(Protocol):
    @property
    def workspace_id(self) -> int: ...

    def batches(self, size: int) -> Iterator[Self]: ...


@dataclass(frozen=True)
class EventsStored:
    """Events stored and processed: identities merged, purchase facts and segment membership of
    their contacts up to date. `contact_ids` are the contacts whose events changed (merged
    anonymous events included), batched beside the events, not matched to them."""

    workspace_id: int
    event_ids: tuple[int, ...]
    contact_ids: tuple[int, ...] = ()

    def batches(self, size: int) -> Iterator[EventsStored]:
        return payload_batches(self, size, "event_ids", "contact_ids")


@dataclass(frozen=True)
class SegmentMembershipChanged:
    workspace_id: int
    segment_id: int
    entered: tuple[int, ...]
    exited: tuple[int, ...]

    def batches(self, size: int) -> Iterator[SegmentMembershipChanged]:
        return payload_batches(self, size, "entered", "exited")


@dataclass(frozen=True)
class ContactsUnsubscribed:
    """Contacts left a list (`mailing_list_id`), or all marketing (`mailing_list_id` None)."""

    workspace_id: int
    contact_ids: tuple[int, ...]
    mailing_list_id: int | None

    def batches(self, size: int) -> Iterator[ContactsUnsubscribed]:
        return payload_batches(self, size, "contact_ids")


@dataclass(frozen=True)
class ContactsSubscribed:
    """Contacts whose subscription to a list became `subscribed` (confirmed, on a double
    opt-in list)."""

    workspace_id: int
    contact_ids: tuple[int, ...]
    mailing_list_id: int

    def batches(self, size: int) -> Iterator[ContactsSubscribed]:
        return payload_batches(self, size, "contact_ids")


@dataclass(frozen=True)
class ContactsSuppressed:
    """Addresses put on the suppression list (a SuppressionReason value each delivery), and the
    contacts that have them (an address may have none), batched side by side."""

    workspace_id: int
    emails: tuple[str, ...]
    contact_ids: tuple[int, ...]
    reason: str

    def batches(self, size: int) -> Iterator[ContactsSuppressed]:
        return payload_batches(self, size, "emails", "contact_ids")


@dataclass(frozen=True)
class ContactsErased:
    """Contacts deleted (a GDPR erasure or a delete): their rows are gone; only the ids remain."""

    workspace_id: int
    contact_ids: tuple[int, ...]

    def batches(self, size: int) -> Iterator[ContactsErased]:
        return payload_batches(self, size, "contact_ids")


@dataclass(frozen=True)
class ContactsStageChanged:
    """Contacts whose lifecycle stage or RFM segment (`field`: "lifecycle_stage" or
    "rfm_segment") became `value` — by new orders, by time passing, or by the nightly scoring."""

    workspace_id: int
    field: str
    value: str
    contact_ids: tuple[int, ...]

    def batches(self, size: int) -> Iterator[ContactsStageChanged]:
        return payload_batches(self, size, "contact_ids")


P = TypeVar("P", bound=Payload)


class Hook(Generic[P]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._subscribers: list[Callable[[P], None]] = []

    def __repr__(self) -> str:
        return f"<Hook {self.name!r}>"

    def subscribe(self, subscriber: Callable[[P], None]) -> Callable[[P], None]:
        """Register a subscriber (usable as a decorator); registering it twice keeps one."""
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Callable[[P], None]) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens: a write path may skip collecting ids nobody will read."""
        return bool(self._subscribers)

    def fire(self, payload: P) -> None:
        """Deliver once the current transaction commits (at once outside a transaction)."""
        if self._subscribers:
            transaction.on_commit(partial(self._deliver, payload))

    def _deliver(self, payload: P) -> None:
        for batch in payload.batches(BATCH_SIZE):
            for subscriber in list(self._subscribers):
                try:
                    subscriber(batch)
                except Exception:
                    logger.exception("subscriber %r of hook %r failed", subscriber, self.name)


events_stored: Hook[EventsStored] = Hook("events stored")
segment_membership_changed: Hook[SegmentMembershipChanged] = Hook("segment membership changed")
contacts_subscribed: Hook[ContactsSubscribed] = Hook("contacts subscribed")
contacts_unsubscribed: Hook[ContactsUnsubscribed] = Hook("contacts unsubscribed")
contacts_suppressed: Hook[ContactsSuppressed] = Hook("contacts suppressed")
contacts_erased: Hook[ContactsErased] = Hook("contacts erased")
contacts_stage_changed: Hook[ContactsStageChanged] = Hook("contacts stage changed")


def stage_changes_fire(workspace_id: int, changes: Iterable[tuple[int, str, str]]) -> None:
    """Fire contacts_stage_changed for (contact id, field, new value) rows, one payload per
    field and value. A value emptied (a contact without orders is no longer ranked) is no
    stage anyone enters, so it is not told."""
    groups: dict[tuple[str, str], list[int]] = {}
    for contact_id, field, value in changes:
        if value:
            groups.setdefault((field, value), []).append(contact_id)
    for (field, value), contact_ids in sorted(groups.items()):
        contacts_stage_changed.fire(ContactsStageChanged(workspace_id, field, value, ids(contact_ids)))


def ids(values: Iterable[int | None]) -> tuple[int, ...]:
    """Sorted distinct ids, Nones left out: what a payload carries."""
    return tuple(sorted({int(value) for value in values if value is not None}))
