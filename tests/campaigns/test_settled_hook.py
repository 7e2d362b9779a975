"""campaigns tells the layers above which messages reached a final state: once per batch and
workspace, after the batch's writes, without importing them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from audiences.models import Contact
from campaigns import hooks
from campaigns.delivery.sender import messages_send_due
from campaigns.delivery.services import messages_enqueue
from campaigns.models import DeliverySettings, EmailTemplate, Message, MessageClass
from esp.models import Workspace

MJML = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>"


@pytest.fixture
def heard() -> Iterator[list[hooks.MessagesSettled]]:
    payloads: list[hooks.MessagesSettled] = []

    def listener(payload: hooks.MessagesSettled) -> None:
        # What the listener reads is already written.
        states = set(Message.objects.filter(pk__in=payload.message_ids).values_list("state", flat=True))
        assert "claimed" not in states and "sending" not in states
        payloads.append(payload)

    hooks.messages_settled.subscribe(listener)
    yield payloads
    hooks.messages_settled.unsubscribe(listener)


def queue(workspace: Workspace, source: str, people: list[Contact], *, due_at: dt.datetime | None = None) -> None:
    tpl, _ = EmailTemplate.objects.get_or_create(
        workspace=workspace, name="T", defaults={"subject": "Hi", "mjml": MJML}
    )
    messages_enqueue(
        workspace=workspace,
        source=source,
        contacts=Contact.objects.filter(pk__in=[p.pk for p in people]),
        template=tpl,
        message_class=MessageClass.MARKETING,
    )


@pytest.mark.django_db
def test_final_states_are_announced_per_workspace_after_the_batch(
    acme: Workspace, globex: Workspace, heard: list[hooks.MessagesSettled], django_capture_on_commit_callbacks: Any
) -> None:
    DeliverySettings.objects.create(workspace=acme, daily_cap=1)
    ann = Contact.objects.create(workspace=acme, email="ann@example.com")
    gus = Contact.objects.create(workspace=globex, email="gus@example.com")
    queue(acme, "broadcast:1", [ann])
    queue(acme, "broadcast:2", [ann])  # over the cap: skipped
    queue(globex, "broadcast:3", [gus])

    with django_capture_on_commit_callbacks(execute=True):
        messages_send_due()

    by_workspace = {payload.workspace_id: set(payload.message_ids) for payload in heard}
    assert by_workspace == {
        acme.pk: set(Message.objects.filter(workspace=acme).values_list("id", flat=True)),
        globex.pk: set(Message.objects.filter(workspace=globex).values_list("id", flat=True)),
    }
    assert len(heard) == 2


@pytest.mark.django_db
def test_nothing_is_announced_for_messages_still_on_their_way(
    acme: Workspace, heard: list[hooks.MessagesSettled], clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    clock.freeze(dt.datetime(2026, 5, 4, 23, 0, tzinfo=dt.UTC))
    DeliverySettings.objects.create(workspace=acme, quiet_hours_start=dt.time(22, 0), quiet_hours_end=dt.time(6, 0))
    ann = Contact.objects.create(workspace=acme, email="ann@example.com", time_zone="UTC")
    queue(acme, "broadcast:1", [ann])

    with django_capture_on_commit_callbacks(execute=True):
        messages_send_due()

    assert Message.objects.get(source="broadcast:1").state == "queued"  # delayed by quiet hours
    assert heard == []
