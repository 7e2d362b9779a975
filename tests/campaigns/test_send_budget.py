"""One send budget for series and broadcasts: priority classes decide which message of a batch
takes a capped contact's place, smart sending skips a contact mailed recently, and every
send-time rule reads the engine's clock (esp.clock), so these tests move time instead of
sleeping. Mail goes to the workspace's outbox (no provider)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection

from audiences.models import Contact
from campaigns.delivery.claims import message_claim_batch
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
)
from esp.models import OutboxMessage, Workspace

MJML = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>"


def template(workspace: Workspace, name: str = "T", **fields: Any) -> EmailTemplate:
    return EmailTemplate.objects.create(workspace=workspace, name=name, subject=f"{name} subject", mjml=MJML, **fields)


def person(workspace: Workspace, address: str, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, email=address, **fields)


def rules(workspace: Workspace, **values: Any) -> None:
    DeliverySettings.objects.update_or_create(workspace=workspace, defaults=values)


def step(
    contact: Contact, tpl: EmailTemplate, key: str, *, priority: int = SendPriority.TRIGGERED, **fields: Any
) -> QueuedMessage:
    return QueuedMessage(
        contact_id=contact.pk,
        source=str(MessageSource.step(contact.pk, key)),
        template_id=tpl.pk,
        message_class=MessageClass.MARKETING,
        priority=priority,
        **fields,
    )


def outcome(source: str) -> tuple[str, str]:
    row = Message.objects.get(source=source)
    return row.state, row.reason


def sent_before(workspace: Workspace, contact: Contact, tpl: EmailTemplate, at: dt.datetime, key: str) -> None:
    """A marketing message handed over at `at` (the engine's clock)."""
    Message.objects.create(
        workspace=workspace,
        contact=contact,
        source=f"broadcast:{key}",
        template=tpl,
        to_email=contact.email,
        state="sent",
        sent_at=at,
    )


# --- priority classes ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_three_series_under_a_one_a_day_cap_send_only_the_most_important(acme: Workspace, clock: Any) -> None:
    rules(acme, daily_cap=1)
    ann = person(acme, "ann@example.com")
    tpl = template(acme)
    # Made lowest priority first: the oldest row must not win the contact's one email.
    promo, triggered, receipt = (
        step(ann, tpl, "promo", priority=SendPriority.PROMOTIONAL),
        step(ann, tpl, "cart", priority=SendPriority.TRIGGERED),
        step(ann, tpl, "receipt", priority=SendPriority.TRANSACTIONAL),
    )
    messages_enqueue_rows(workspace=acme, rows=[promo, triggered, receipt])

    assert messages_send_due() == 3

    assert outcome(receipt.source) == ("sent", "")
    assert outcome(triggered.source) == ("skipped", SkipReason.DAILY_CAP)
    assert outcome(promo.source) == ("skipped", SkipReason.DAILY_CAP)
    assert OutboxMessage.objects.filter(workspace=acme, to=["ann@example.com"]).count() == 1


@pytest.mark.django_db
def test_broadcasts_keep_the_promotional_default_and_transactional_api_mail_goes_first(acme: Workspace) -> None:
    from campaigns.delivery.services import message_send_transactional

    ann = person(acme, "ann@example.com")
    tpl = template(acme)
    messages_enqueue(
        workspace=acme,
        source="broadcast:1",
        contacts=Contact.objects.filter(pk=ann.pk),
        template=tpl,
        message_class=MessageClass.MARKETING,
    )
    receipt, _created = message_send_transactional(
        workspace=acme, template=tpl, contact_id=ann.pk, data={}, idempotency_key="order-1"
    )
    assert Message.objects.get(source="broadcast:1").priority == SendPriority.PROMOTIONAL
    assert receipt.priority == SendPriority.TRANSACTIONAL


def _claim_plan() -> str:
    """The plan of the claim's row choice with sequential and bitmap scans ruled out: what
    remains is the message_due index, read in the claim's order or followed by a sort."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(
            """
            EXPLAIN SELECT id FROM campaigns_message
            WHERE state = 'queued' AND due_at <= now()
            ORDER BY due_at, priority DESC, id LIMIT 100
            FOR UPDATE SKIP LOCKED
            """
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_bitmapscan")
    return plan


@pytest.mark.django_db
def test_the_claim_takes_the_most_important_of_rows_due_together_in_index_order(acme: Workspace) -> None:
    ann, bob = person(acme, "ann@example.com"), person(acme, "bob@example.com")
    tpl = template(acme)
    due = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    rows = [
        step(ann, tpl, "promo", priority=SendPriority.PROMOTIONAL, due_at=due),
        step(bob, tpl, "cart", priority=SendPriority.TRIGGERED, due_at=due),
        step(ann, tpl, "receipt", priority=SendPriority.TRANSACTIONAL, due_at=due),
        # Older than all of them: still first, priority only orders rows due at the same time.
        step(bob, tpl, "old", priority=SendPriority.PROMOTIONAL, due_at=due - dt.timedelta(minutes=1)),
    ]
    made = messages_enqueue_rows(workspace=acme, rows=rows)
    token = dt.datetime(2026, 1, 5, 9, 1, tzinfo=dt.UTC)

    claimed = [message_claim_batch(limit=1, token=token + dt.timedelta(seconds=n), now=due)[0] for n in range(4)]

    assert claimed == [made[rows[3].source], made[rows[2].source], made[rows[1].source], made[rows[0].source]]
    plan = _claim_plan()
    assert "message_due" in plan and "Sort" not in plan, plan


# --- smart sending --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_smart_sending_skips_a_contact_mailed_within_the_window(acme: Workspace, clock: Any) -> None:
    tpl = template(acme)
    recent, earlier, fresh = (person(acme, f"{name}@example.com") for name in ("recent", "earlier", "fresh"))
    now = clock.now()
    sent_before(acme, recent, tpl, now - dt.timedelta(hours=15), "r")  # inside the default 16 h
    sent_before(acme, earlier, tpl, now - dt.timedelta(hours=17), "e")
    rows = [step(c, tpl, "welcome", smart_sending=True) for c in (recent, earlier, fresh)]
    # Not asking for smart sending (a broadcast): goes whatever was sent before.
    plain = step(recent, tpl, "plain")
    # A second smart message to `fresh` in the same batch: the first one that passed counts.
    second = step(fresh, tpl, "second", smart_sending=True, priority=SendPriority.PROMOTIONAL)
    messages_enqueue_rows(workspace=acme, rows=[*rows, plain, second])

    messages_send_due()

    assert outcome(rows[0].source) == ("skipped", SkipReason.SMART_SENDING)
    assert outcome(rows[1].source) == ("sent", "")
    assert outcome(rows[2].source) == ("sent", "")
    assert outcome(plain.source) == ("sent", "")
    assert outcome(second.source) == ("skipped", SkipReason.SMART_SENDING)


@pytest.mark.django_db
def test_smart_sending_windows_move_with_the_clock_and_zero_turns_it_off(acme: Workspace, clock: Any) -> None:
    tpl = template(acme)
    ann = person(acme, "ann@example.com")
    first = step(ann, tpl, "1", smart_sending=True)
    messages_enqueue_rows(workspace=acme, rows=[first])
    messages_send_due()
    assert outcome(first.source) == ("sent", "")
    assert Message.objects.get(source=first.source).sent_at == clock.now()

    clock.advance(hours=15)
    second = step(ann, tpl, "2", smart_sending=True)
    messages_enqueue_rows(workspace=acme, rows=[second])
    messages_send_due()
    assert outcome(second.source) == ("skipped", SkipReason.SMART_SENDING)

    clock.advance(hours=2)  # 17 h after the first
    third = step(ann, tpl, "3", smart_sending=True)
    messages_enqueue_rows(workspace=acme, rows=[third])
    messages_send_due()
    assert outcome(third.source) == ("sent", "")

    rules(acme, smart_sending_hours=0)
    fourth = step(ann, tpl, "4", smart_sending=True)
    messages_enqueue_rows(workspace=acme, rows=[fourth])
    messages_send_due()
    assert outcome(fourth.source) == ("sent", "")


@pytest.mark.django_db
def test_transactional_mail_ignores_smart_sending(acme: Workspace, clock: Any) -> None:
    tpl = template(acme)
    ann = person(acme, "ann@example.com")
    sent_before(acme, ann, tpl, clock.now() - dt.timedelta(hours=1), "x")
    receipt = QueuedMessage(
        contact_id=ann.pk,
        source=str(MessageSource.step(ann.pk, "receipt")),
        template_id=tpl.pk,
        message_class=MessageClass.TRANSACTIONAL,
        priority=SendPriority.TRANSACTIONAL,
        smart_sending=True,
    )
    messages_enqueue_rows(workspace=acme, rows=[receipt])
    messages_send_due()
    assert outcome(receipt.source) == ("sent", "")


# --- the clock ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_quiet_hours_delay_a_series_step_until_the_clock_passes_the_window(acme: Workspace, clock: Any) -> None:
    rules(acme, quiet_hours_start=dt.time(21, 0), quiet_hours_end=dt.time(8, 0))
    # 21:30 in Berlin (CET, UTC+1): quiet until 08:00 Berlin, 07:00 UTC the next day.
    clock.freeze(dt.datetime(2026, 3, 10, 20, 30, tzinfo=dt.UTC))
    ann = person(acme, "ann@example.com", time_zone="Europe/Berlin")
    tpl = template(acme)
    welcome = step(ann, tpl, "welcome")
    messages_enqueue_rows(workspace=acme, rows=[welcome])

    messages_send_due()
    row = Message.objects.get(source=welcome.source)
    assert (row.state, row.reason) == ("queued", SkipReason.QUIET_HOURS)
    assert row.due_at == dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)

    clock.advance(hours=10, minutes=29)  # 06:59 UTC: not due yet
    assert messages_send_due() == 0
    clock.advance(minutes=1)
    assert messages_send_due() == 1
    row.refresh_from_db()
    assert row.state == "sent" and row.sent_at == dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)
    assert OutboxMessage.objects.filter(workspace=acme).count() == 1


@pytest.mark.django_db
def test_a_message_due_later_waits_for_the_clock(acme: Workspace, clock: Any) -> None:
    ann = person(acme, "ann@example.com")
    later = step(ann, template(acme), "later", due_at=clock.now() + dt.timedelta(days=2))
    messages_enqueue_rows(workspace=acme, rows=[later])
    assert messages_send_due() == 0
    clock.advance(days=2)
    assert messages_send_due() == 1
    assert outcome(later.source) == ("sent", "")


def test_skip_reasons_fit_their_column() -> None:
    limit = Message._meta.get_field("reason").max_length
    assert limit is not None
    assert all(len(value) <= limit for value in SkipReason.values)
