"""Send gates: a higher layer (the series engine) stops messages of its kind at send time,
set-based, before suppression and caps; a gate that fails holds its messages back for the
retry backoff instead of sending or dropping them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from audiences.models import Contact
from campaigns.delivery import gates
from campaigns.delivery.retries import MAX_ATTEMPTS, RETRY_BACKOFF
from campaigns.delivery.sender import messages_send_due
from campaigns.delivery.services import QueuedMessage, messages_enqueue, messages_enqueue_rows
from campaigns.models import (
    DeliverySettings,
    EmailTemplate,
    Message,
    MessageClass,
    MessageSource,
    SendPriority,
    SkipReason,
    SourceKind,
)
from esp.models import Workspace

MJML = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>"

Gate = Callable[[list[Message], dt.datetime], Mapping[int, str]]


@pytest.fixture
def gate_of_steps() -> Iterator[Callable[[Gate], Gate]]:
    """Registers gates for series steps for one test."""
    registered: list[Gate] = []

    def add(gate: Gate) -> Gate:
        registered.append(gate)
        return gates.register(SourceKind.STEP, gate)

    yield add
    for gate in registered:
        gates.unregister(SourceKind.STEP, gate)


def setup(workspace: Workspace, count: int = 3) -> tuple[EmailTemplate, list[Contact]]:
    tpl = EmailTemplate.objects.create(workspace=workspace, name="T", subject="Hi", mjml=MJML)
    people = [Contact.objects.create(workspace=workspace, email=f"p{n}@example.com") for n in range(count)]
    return tpl, people


def steps(tpl: EmailTemplate, people: list[Contact], key: str = "s", **fields: Any) -> list[QueuedMessage]:
    return [
        QueuedMessage(
            contact_id=c.pk,
            source=str(MessageSource.step(c.pk, key)),
            template_id=tpl.pk,
            message_class=MessageClass.MARKETING,
            **fields,
        )
        for c in people
    ]


def broadcast(workspace: Workspace, tpl: EmailTemplate, people: list[Contact]) -> None:
    messages_enqueue(
        workspace=workspace,
        source="broadcast:1",
        contacts=Contact.objects.filter(pk__in=[c.pk for c in people]),
        template=tpl,
        message_class=MessageClass.MARKETING,
    )


def row(source: str) -> Message:
    return Message.objects.get(source=source)


@pytest.mark.django_db
def test_a_gate_stops_messages_of_its_kind_once_per_batch(
    acme: Workspace, clock: Any, gate_of_steps: Callable[[Gate], Gate]
) -> None:
    tpl, people = setup(acme)
    calls: list[tuple[list[int], dt.datetime]] = []
    queued = steps(tpl, people)
    made = messages_enqueue_rows(workspace=acme, rows=queued)
    ended, paused = made[queued[0].source], made[queued[1].source]

    def series_gate(messages: list[Message], now: dt.datetime) -> dict[int, str]:
        calls.append(([m.id for m in messages], now))
        return {ended: SkipReason.SERIES_ENDED, paused: SkipReason.SERIES_PAUSED, 10**12: SkipReason.FLOW_FILTER}

    gate_of_steps(series_gate)
    gate_of_steps(series_gate)  # registered once
    broadcast(acme, tpl, people)

    messages_send_due()

    # One call, with the batch's step messages only, at the engine's now.
    assert len(calls) == 1
    assert sorted(calls[0][0]) == sorted(made.values()) and calls[0][1] == clock.now()
    assert (row(queued[0].source).state, row(queued[0].source).reason) == ("skipped", SkipReason.SERIES_ENDED)
    assert (row(queued[1].source).state, row(queued[1].source).reason) == ("skipped", SkipReason.SERIES_PAUSED)
    assert row(queued[2].source).state == "sent"
    assert set(Message.objects.filter(source="broadcast:1").values_list("state", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_a_stopped_message_takes_no_place_under_a_cap(
    acme: Workspace, clock: Any, gate_of_steps: Callable[[Gate], Gate]
) -> None:
    DeliverySettings.objects.create(workspace=acme, daily_cap=1)
    tpl, people = setup(acme, 1)
    (urgent,) = steps(tpl, people, "urgent", priority=SendPriority.TRANSACTIONAL)
    made = messages_enqueue_rows(workspace=acme, rows=[urgent])
    gate_of_steps(lambda messages, now: {made[urgent.source]: SkipReason.FLOW_FILTER})
    broadcast(acme, tpl, people)

    messages_send_due()

    assert row(urgent.source).reason == SkipReason.FLOW_FILTER
    assert row("broadcast:1").state == "sent"


@pytest.mark.django_db
@pytest.mark.parametrize("answer", ["raise", "unknown reason"])
def test_a_failing_gate_holds_its_messages_back_for_the_retry_backoff(
    acme: Workspace, clock: Any, gate_of_steps: Callable[[Gate], Gate], answer: str
) -> None:
    tpl, people = setup(acme, 2)
    queued = steps(tpl, people)
    messages_enqueue_rows(workspace=acme, rows=queued)
    broken = True

    def flaky(messages: list[Message], now: dt.datetime) -> dict[int, str]:
        if broken:
            if answer == "raise":
                # A database error inside the gate: the batch's connection must stay usable.
                Message.objects.raw("SELECT no_such_column FROM campaigns_message")[0]
            return {messages[0].id: "no_such_reason"}
        return {}

    gate_of_steps(flaky)
    broadcast(acme, tpl, people)

    messages_send_due()

    held = [row(q.source) for q in queued]
    assert [(m.state, m.attempts, m.due_at) for m in held] == [("queued", 1, clock.now() + RETRY_BACKOFF[0])] * 2
    assert set(Message.objects.filter(source="broadcast:1").values_list("state", flat=True)) == {"sent"}

    assert messages_send_due() == 0  # not due before the backoff
    broken = False
    clock.advance(RETRY_BACKOFF[0])
    messages_send_due()
    assert [row(q.source).state for q in queued] == ["sent", "sent"]


@pytest.mark.django_db
def test_a_gate_that_keeps_failing_fails_its_messages_in_the_end(
    acme: Workspace, clock: Any, gate_of_steps: Callable[[Gate], Gate]
) -> None:
    tpl, people = setup(acme, 1)
    (queued,) = steps(tpl, people)
    messages_enqueue_rows(workspace=acme, rows=[queued])

    def broken(messages: list[Message], now: dt.datetime) -> dict[int, str]:
        raise RuntimeError("the series store is down")

    gate_of_steps(broken)
    for _attempt in range(MAX_ATTEMPTS):
        clock.advance(hours=2)
        messages_send_due()

    message = row(queued.source)
    assert (message.state, message.reason, message.attempts) == ("failed", SkipReason.GATE_ERROR, MAX_ATTEMPTS - 1)
