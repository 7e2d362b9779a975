"""The delivery engine end to end: messages queued, claimed, checked at send time, rendered and
handed to a real SMTP server (aiosmtpd, started by the test in a thread) through an SMTP
provider of the workspace; what arrives is parsed and compared with hand-computed values."""

from __future__ import annotations

import binascii
import datetime as dt
import email
import email.policy
import random
import socket
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from audiences.models import (
    Contact,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    email_hash,
)
from campaigns.delivery.checks import quiet_hours_end
from campaigns.delivery.claims import LEASE
from campaigns.delivery.composer import quoted_printable
from campaigns.delivery.recovery import messages_recover
from campaigns.delivery.sender import messages_send_due
from campaigns.delivery.services import message_send_test, messages_enqueue
from campaigns.models import (
    DeliverySettings,
    EmailTemplate,
    Message,
    MessageClass,
    MessageState,
    Provider,
    SenderIdentity,
    SkipReason,
)
from campaigns.providers.services import provider_create
from esp.models import OutboxMessage, Workspace
from tests.campaigns.smtp_servers import ehlo_offering_pipelining

# Their SMTP sinks and fake ESP APIs listen on loopback.
pytestmark = pytest.mark.usefixtures("local_outbound")

BODY = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Здравствуйте, {{ contact.first_name|default:"друг" }}! Ваш заказ {{ event.order_id|default:"—" }}.</mj-text>
<mj-button href="https://shop.example/sale?x=1">Распродажа</mj-button>
</mj-column></mj-section></mj-body></mjml>"""


# --- a real SMTP server -----------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    port: int
    received: list[Received] = field(default_factory=list)
    # Recipient -> the reply RCPT gets instead of 250 (e.g. "451 4.3.0 Try later").
    refuse: dict[str, str] = field(default_factory=dict)

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.rcpt_tos]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.server.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.server.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(port=_free_port())
    controller = Controller(_Handler(server), hostname="127.0.0.1", port=server.port, enable_SMTPUTF8=True)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


class _PipeliningHandler(_Handler):
    """Also offers PIPELINING (RFC 2920), as production MTAs do."""

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        return ehlo_offering_pipelining(session, hostname, responses)


@pytest.fixture
def pipelining_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(port=_free_port())
    controller = Controller(_PipeliningHandler(server), hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def shop(acme: Workspace) -> Workspace:
    acme.name = "Ромашка"
    acme.default_from_name = "Магазин «Ромашка», Москва"
    acme.default_from_email = "hello@romashka.example"
    acme.postal_address = "ул. Ленина, 1, Москва"
    acme.time_zone = "Europe/Moscow"
    acme.save()
    return acme


@pytest.fixture
def provider(shop: Workspace, smtp: SmtpServer) -> Provider:
    return provider_create(
        workspace=shop,
        name="Test relay",
        kind="smtp",
        credentials={"host": "127.0.0.1", "port": smtp.port, "use_tls": False, "timeout": 5},
        is_default=True,
    )


def template(workspace: Workspace, *, message_class: str = MessageClass.MARKETING, **fields: Any) -> EmailTemplate:
    values: dict[str, Any] = {
        "name": f"T{EmailTemplate.objects.count()}",
        "subject": "Привет, {{ contact.first_name|default:'друг' }}! Скидка 20%",
        "mjml": BODY,
        "message_class": message_class,
        **fields,
    }
    return EmailTemplate.objects.create(workspace=workspace, **values)


def contact(workspace: Workspace, address: str, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, email=address, **fields)


def enqueue(workspace: Workspace, source: str, contacts: list[Contact], tpl: EmailTemplate, **kwargs: Any) -> int:
    return messages_enqueue(
        workspace=workspace,
        source=source,
        contacts=Contact.objects.filter(pk__in=[c.pk for c in contacts]),
        template=tpl,
        message_class=tpl.message_class,
        **kwargs,
    )


def message_of(source: str, person: Contact) -> Message:
    return Message.objects.get(source=source, contact=person)


def caps(workspace: Workspace, **values: Any) -> DeliverySettings:
    rules, _ = DeliverySettings.objects.update_or_create(workspace=workspace, defaults=values)
    return rules


# --- what arrives -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_marketing_mail_arrives_personalised_with_compliance_headers(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    anna = contact(shop, "anna@example.ru", first_name="Анна")
    bob = contact(shop, "bob@example.com")
    tpl = template(shop)
    assert enqueue(shop, "broadcast:1", [anna, bob], tpl, data={"event": {"order_id": "A-17"}}) == 2

    assert messages_send_due() == 2

    (mail,) = smtp.to("anna@example.ru")
    assert mail["Subject"] == "Привет, Анна! Скидка 20%"
    assert "=?utf-8?" in mail.as_string().split("Subject:", 1)[1].splitlines()[0]  # RFC 2047 on the wire
    assert mail["From"].addresses[0].display_name == "Магазин «Ромашка», Москва"
    assert mail["From"].addresses[0].addr_spec == "hello@romashka.example"
    row = message_of("broadcast:1", anna)
    # RFC 8058: both headers, the URL is the message's own unsubscribe link.
    assert mail["List-Unsubscribe"] == f"<{settings.PUBLIC_BASE_URL}/e/u/" + mail["List-Unsubscribe"].split("/e/u/")[1]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"] == row.provider_message_id and mail["Message-ID"].endswith("@romashka.example>")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Здравствуйте, Анна! Ваш заказ A-17." in text
    assert "Здравствуйте, Анна! Ваш заказ A-17." in html
    # The button goes through the click redirect; the URL it leads to is stored on the row.
    assert "https://shop.example/sale" not in html and row.links == ["https://shop.example/sale?x=1"]
    assert row.state == MessageState.SENT and row.sent_at is not None and row.reason == ""
    assert row.subject == "Привет, Анна! Скидка 20%" and row.to_email == "anna@example.ru"

    (other,) = smtp.to("bob@example.com")
    assert other["Subject"] == "Привет, друг! Скидка 20%"  # the fallback
    assert "Здравствуйте, друг!" in other.get_body(("plain",)).get_content()
    assert message_of("broadcast:1", bob).state == MessageState.SENT


@pytest.mark.django_db
def test_sender_identity_and_reply_to(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    sender = SenderIdentity.objects.create(
        workspace=shop, from_name="Служба заботы", from_email="care@romashka.example", reply_to="help@romashka.example"
    )
    anna = contact(shop, "anna@example.ru", first_name="Анна")
    enqueue(shop, "broadcast:2", [anna], template(shop), sender=sender)
    messages_send_due()
    (mail,) = smtp.to("anna@example.ru")
    assert str(mail["From"]) == "Служба заботы <care@romashka.example>"
    assert str(mail["Reply-To"]) == "help@romashka.example"


@pytest.mark.django_db
def test_a_templates_sender_and_provider_route_its_mail(
    shop: Workspace, provider: Provider, smtp: SmtpServer, pipelining_smtp: SmtpServer
) -> None:
    """Receipts from orders@ through their own relay; the workspace's defaults for the rest;
    a message's own sender wins over its template's."""
    orders = SenderIdentity.objects.create(workspace=shop, from_name="Заказы", from_email="orders@romashka.example")
    care = SenderIdentity.objects.create(workspace=shop, from_name="Забота", from_email="care@romashka.example")
    relay = provider_create(
        workspace=shop, name="Receipts relay", kind="smtp",
        credentials={"host": "127.0.0.1", "port": pipelining_smtp.port, "use_tls": False, "timeout": 5},
    )  # fmt: skip
    receipt = template(shop, message_class=MessageClass.TRANSACTIONAL, sender=orders, provider=relay)
    anna, bob, cara = (contact(shop, f"{n}@example.ru", first_name=n) for n in ("anna", "bob", "cara"))
    enqueue(shop, "tx:1", [anna], receipt)
    enqueue(shop, "tx:2", [bob], receipt, sender=care)
    enqueue(shop, "broadcast:9", [cara], template(shop))
    messages_send_due()
    (to_anna,) = pipelining_smtp.to("anna@example.ru")
    assert str(to_anna["From"]) == "Заказы <orders@romashka.example>"
    (to_bob,) = pipelining_smtp.to("bob@example.ru")
    assert str(to_bob["From"]) == "Забота <care@romashka.example>"
    (to_cara,) = smtp.to("cara@example.ru")  # the default provider and sender
    assert str(to_cara["From"]) == '"Магазин «Ромашка», Москва" <hello@romashka.example>'
    assert smtp.to("anna@example.ru") == [] and pipelining_smtp.to("cara@example.ru") == []


@pytest.mark.django_db
def test_transactional_mail_has_no_unsubscribe_headers(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    anna = contact(shop, "anna@example.ru", first_name="Анна")
    enqueue(shop, "step:1", [anna], template(shop, message_class=MessageClass.TRANSACTIONAL))
    messages_send_due()
    (mail,) = smtp.to("anna@example.ru")
    assert mail["List-Unsubscribe"] is None and mail["Subject"] == "Привет, Анна! Скидка 20%"


@pytest.mark.django_db
def test_without_a_provider_mail_goes_to_the_outbox(acme: Workspace) -> None:
    person = contact(acme, "c@example.com", first_name="Cy")
    enqueue(acme, "broadcast:3", [person], template(acme, subject="Hi {{ contact.first_name }}"))
    messages_send_due()
    (stored,) = OutboxMessage.objects.filter(workspace=acme)
    assert stored.to == ["c@example.com"] and stored.subject == "Hi Cy"
    assert message_of("broadcast:3", person).state == MessageState.SENT


# --- the queue --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_enqueue_is_one_row_per_contact_and_source(acme: Workspace, globex: Workspace) -> None:
    mine = [contact(acme, f"p{i}@example.com") for i in range(3)]
    theirs = contact(globex, "x@globex.example")
    tpl = template(acme)
    everyone = Contact.objects.filter(pk__in=[*(c.pk for c in mine), theirs.pk])
    made = messages_enqueue(
        workspace=acme, source="broadcast:9", contacts=everyone, template=tpl, message_class=MessageClass.MARKETING
    )
    assert made == 3  # another workspace's contact in the queryset is left out
    again = messages_enqueue(
        workspace=acme, source="broadcast:9", contacts=everyone, template=tpl, message_class=MessageClass.MARKETING
    )
    assert again == 0
    rows = Message.objects.filter(source="broadcast:9")
    assert sorted(rows.values_list("to_email", flat=True)) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert set(rows.values_list("state", flat=True)) == {MessageState.QUEUED}
    assert set(rows.values_list("workspace_id", flat=True)) == {acme.pk}


@pytest.mark.django_db
def test_a_row_in_sending_is_never_sent_again(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    anna = contact(shop, "anna@example.ru")
    enqueue(shop, "broadcast:4", [anna], template(shop))
    Message.objects.filter(source="broadcast:4").update(state=MessageState.SENDING, claimed_at=timezone.now())
    assert messages_send_due() == 0
    assert smtp.received == []


@pytest.mark.django_db
def test_recovery_requeues_old_claims_and_marks_old_hand_overs_in_doubt(acme: Workspace) -> None:
    people = [contact(acme, f"r{i}@example.com") for i in range(4)]
    enqueue(acme, "broadcast:5", people, template(acme))
    now = timezone.now()
    old_claim, fresh_claim, old_sending, fresh_sending = (message_of("broadcast:5", p) for p in people)
    Message.objects.filter(pk=old_claim.pk).update(state="claimed", claimed_at=now - LEASE - dt.timedelta(seconds=1))
    Message.objects.filter(pk=fresh_claim.pk).update(state="claimed", claimed_at=now - dt.timedelta(seconds=30))
    Message.objects.filter(pk=old_sending.pk).update(state="sending", claimed_at=now - dt.timedelta(minutes=6))
    Message.objects.filter(pk=fresh_sending.pk).update(state="sending", claimed_at=now - dt.timedelta(minutes=1))

    recovered = messages_recover()

    assert (recovered.requeued, recovered.in_doubt) == (1, 1)
    states = dict(Message.objects.filter(source="broadcast:5").values_list("pk", "state"))
    assert states == {
        old_claim.pk: "queued",
        fresh_claim.pk: "claimed",
        old_sending.pk: "in_doubt",
        fresh_sending.pk: "sending",
    }
    assert Message.objects.get(pk=old_sending.pk).reason == SkipReason.CRASHED


@pytest.mark.django_db
def test_a_claim_taken_back_by_recovery_is_not_sent_by_its_old_worker(acme: Workspace) -> None:
    from campaigns.delivery.claims import message_claim_batch
    from campaigns.delivery.sender import Sender

    person = contact(acme, "late@example.com")
    enqueue(acme, "broadcast:6", [person], template(acme))
    token = timezone.now()
    ids = message_claim_batch(limit=10, token=token)
    # The worker stalls past the lease; recovery gives the row back, another worker claims it.
    messages_recover(claimed_after=dt.timedelta(0))
    other = message_claim_batch(limit=10, token=token + dt.timedelta(seconds=1))
    assert other == ids
    Sender().send_batch(ids, token)  # the stalled worker resumes
    assert Message.objects.get(pk=ids[0]).state == MessageState.CLAIMED  # untouched: the other worker's
    assert OutboxMessage.objects.count() == 0


# --- checks at send time ----------------------------------------------------------------------


@pytest.mark.django_db
def test_suppressed_addresses_are_skipped_with_the_reason(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    unsubscribed = contact(shop, "gone@example.com")
    bounced = contact(shop, "Bounced@Example.com")
    fine = contact(shop, "fine@example.com")
    # Suppressed after the audience was chosen (rows already queued): the send-time check wins.
    marketing = template(shop)
    transactional = template(shop, message_class=MessageClass.TRANSACTIONAL)
    enqueue(shop, "broadcast:7", [unsubscribed, bounced, fine], marketing)
    enqueue(shop, "step:7", [unsubscribed, bounced, fine], transactional)
    Suppression.objects.create(
        workspace=shop, email_hash=email_hash("gone@example.com"), reason=SuppressionReason.UNSUBSCRIBED
    )
    Suppression.objects.create(
        workspace=shop, email_hash=email_hash("bounced@example.com"), reason=SuppressionReason.HARD_BOUNCE
    )

    messages_send_due()

    def outcome(source: str, person: Contact) -> tuple[str, str]:
        row = message_of(source, person)
        return row.state, row.reason

    assert outcome("broadcast:7", unsubscribed) == ("suppressed", "suppressed")
    assert outcome("broadcast:7", bounced) == ("suppressed", "suppressed")
    assert outcome("broadcast:7", fine) == ("sent", "")
    # Transactional mail ignores an unsubscribe, never a hard bounce.
    assert outcome("step:7", unsubscribed) == ("sent", "")
    assert outcome("step:7", bounced) == ("suppressed", "suppressed")
    assert outcome("step:7", fine) == ("sent", "")
    assert len(smtp.to("gone@example.com")) == 1 and smtp.to("Bounced@Example.com") == []


@pytest.mark.django_db
def test_list_unsubscribe_skips_marketing_but_not_transactional(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    news = MailingList.objects.create(workspace=shop, name="News")
    stayed = contact(shop, "stayed@example.com")
    left = contact(shop, "left@example.com")
    never = contact(shop, "never@example.com")
    Subscription.objects.create(workspace=shop, contact=stayed, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED)
    Subscription.objects.create(workspace=shop, contact=left, mailing_list=news, status=SubscriptionStatus.UNSUBSCRIBED)
    enqueue(shop, "broadcast:8", [stayed, left, never], template(shop), mailing_list=news)
    enqueue(shop, "step:8", [left], template(shop, message_class=MessageClass.TRANSACTIONAL), mailing_list=news)

    messages_send_due()

    assert message_of("broadcast:8", stayed).state == "sent"
    assert (message_of("broadcast:8", left).state, message_of("broadcast:8", left).reason) == (
        "skipped",
        "unsubscribed",
    )
    assert (message_of("broadcast:8", never).state, message_of("broadcast:8", never).reason) == (
        "skipped",
        "unsubscribed",
    )
    assert message_of("step:8", left).state == "sent"
    assert [len(smtp.to(a)) for a in ("stayed@example.com", "left@example.com", "never@example.com")] == [1, 1, 0]


@pytest.mark.django_db
def test_marketing_needs_the_postal_address(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    shop.postal_address = "  "
    shop.save()
    person = contact(shop, "p@example.com")
    enqueue(shop, "broadcast:10", [person], template(shop))
    enqueue(shop, "step:10", [person], template(shop, message_class=MessageClass.TRANSACTIONAL))
    messages_send_due()
    row = message_of("broadcast:10", person)
    assert (row.state, row.reason) == ("skipped", "no_postal_address")
    assert message_of("step:10", person).state == "sent"


@pytest.mark.django_db
def test_an_erased_contact_gets_nothing(acme: Workspace) -> None:
    from audiences.gdpr import contact_erase

    person = contact(acme, "erase-me@example.com")
    enqueue(acme, "broadcast:11", [person], template(acme))
    contact_erase(workspace=acme, contact_id=person.pk)
    messages_send_due()
    row = Message.objects.get(source="broadcast:11")
    assert (row.state, row.reason) == ("skipped", "no_email")
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db
def test_daily_cap_counts_earlier_messages_of_the_same_batch(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    caps(shop, daily_cap=2)
    person = contact(shop, "busy@example.com")
    tpl = template(shop)
    for number in (1, 2, 3):
        enqueue(shop, f"broadcast:2{number}", [person], tpl)

    assert messages_send_due() == 3

    # Cap 2, three messages in one batch (oldest first): the third is skipped.
    outcomes = [(m.state, m.reason) for m in Message.objects.filter(contact=person).order_by("id")]
    assert outcomes == [("sent", ""), ("sent", ""), ("skipped", "daily_cap")]
    assert len(smtp.to("busy@example.com")) == 2


@pytest.mark.django_db
def test_caps_count_sends_of_the_last_day_and_week(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    caps(shop, daily_cap=1, weekly_cap=3)
    now = timezone.now()
    daily = contact(shop, "daily@example.com")
    weekly = contact(shop, "weekly@example.com")
    tx_only = contact(shop, "tx@example.com")
    tpl = template(shop)

    def sent(person: Contact, ago: dt.timedelta, source: str, message_class: str = MessageClass.MARKETING) -> None:
        Message.objects.create(
            workspace=shop, contact=person, source=source, template=tpl, to_email=person.email, state="sent",
            sent_at=now - ago, message_class=message_class,
        )  # fmt: skip

    sent(daily, dt.timedelta(hours=23), "old:1")  # inside the day: the daily cap of 1 is reached
    for n, days in enumerate((2, 4, 6)):
        sent(weekly, dt.timedelta(days=days), f"old:w{n}")  # three this week, none today
    sent(weekly, dt.timedelta(days=8), "old:w9")  # outside the week
    sent(tx_only, dt.timedelta(hours=1), "old:t", MessageClass.TRANSACTIONAL)  # transactional does not count
    enqueue(shop, "broadcast:30", [daily, weekly, tx_only], tpl)

    messages_send_due()

    assert (message_of("broadcast:30", daily).state, message_of("broadcast:30", daily).reason) == (
        "skipped",
        "daily_cap",
    )
    assert (message_of("broadcast:30", weekly).state, message_of("broadcast:30", weekly).reason) == (
        "skipped",
        "weekly_cap",
    )
    assert message_of("broadcast:30", tx_only).state == "sent"


def leases() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT contact_id, holder FROM campaigns_cap_lease")
        return dict(cursor.fetchall())


@pytest.mark.django_db
def test_a_capped_contact_another_worker_is_sending_to_waits_for_it(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    """Two workers must not both count 'one more is allowed' for the same contact: a batch
    holds each capped contact's lease while it sends, and a contact leased elsewhere waits."""
    caps(shop, daily_cap=1)
    busy, free = contact(shop, "busy@example.com"), contact(shop, "free@example.com")
    enqueue(shop, "broadcast:60", [busy, free], template(shop))
    with connection.cursor() as cursor:
        # Another worker's batch is sending to `busy`.
        cursor.execute("INSERT INTO campaigns_cap_lease VALUES (%s, 7, now() + interval '1 minute')", [busy.pk])
    messages_send_due()
    waiting = message_of("broadcast:60", busy)
    assert (waiting.state, waiting.reason) == ("queued", "")
    assert timezone.now() < waiting.due_at < timezone.now() + dt.timedelta(seconds=6)
    assert message_of("broadcast:60", free).state == "sent"
    # The drain let go of the lease it took, and left the other worker's alone.
    assert leases() == {busy.pk: 7}
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM campaigns_cap_lease WHERE holder = 7")
    Message.objects.filter(pk=waiting.pk).update(due_at=timezone.now())
    messages_send_due()
    assert message_of("broadcast:60", busy).state == "sent"
    assert len(smtp.to("busy@example.com")) == 1
    assert leases() == {}


@pytest.mark.django_db
def test_a_batch_that_fails_after_taking_cap_leases_lets_them_go(
    shop: Workspace, provider: Provider, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    caps(shop, daily_cap=1)
    person = contact(shop, "unlucky@example.com")
    enqueue(shop, "broadcast:62", [person], template(shop))

    from campaigns.delivery import checks

    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("counting failed")

    monkeypatch.setattr(checks, "_recent_marketing_sends", fails)
    with pytest.raises(RuntimeError):
        messages_send_due()
    assert leases() == {}  # not left to block the contact's mail until the lease expires
    assert message_of("broadcast:62", person).state == "queued"


@pytest.mark.django_db
def test_a_dead_workers_cap_lease_expires(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    caps(shop, daily_cap=1)
    person = contact(shop, "orphan@example.com")
    enqueue(shop, "broadcast:61", [person], template(shop))
    with connection.cursor() as cursor:
        # Left by a worker that died mid-batch (no batch runs this long).
        cursor.execute("INSERT INTO campaigns_cap_lease VALUES (%s, 8, now() - interval '1 second')", [person.pk])
    messages_send_due()
    assert message_of("broadcast:61", person).state == "sent"
    assert leases() == {}


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_never_share_a_cap_lease() -> None:
    """Two workers leasing the same contacts at the same moment: each contact goes to one."""
    import threading

    from django.db import connections

    from campaigns.delivery import checks

    contacts = set(range(1, 301))
    for round_number in range(10):
        barrier = threading.Barrier(2)
        taken: dict[int, list[int]] = {}

        def batch(holder: int, taken: dict[int, list[int]] = taken, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                taken[holder] = checks._lock_caps(contacts, holder)
            finally:
                connections.close_all()  # this thread's connection

        threads = [threading.Thread(target=batch, args=(100 * round_number + n,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        first, second = taken.values()
        assert set(first).isdisjoint(second) and set(first) | set(second) == contacts
        for holder, held in taken.items():
            checks.unlock_caps(checks.Verdicts(cap_locks=held, holder=holder))
        assert leases() == {}


@pytest.mark.django_db
def test_transactional_mail_and_tests_bypass_caps(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    caps(shop, daily_cap=1)
    person = contact(shop, "tx@example.com")
    tx = template(shop, message_class=MessageClass.TRANSACTIONAL)
    for number in (1, 2, 3):
        enqueue(shop, f"step:4{number}", [person], tx)
    messages_send_due()
    assert list(Message.objects.filter(contact=person).values_list("state", flat=True)) == ["sent"] * 3


def test_quiet_hours_end_hand_computed() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    night = (dt.time(21), dt.time(8))
    utc = dt.UTC
    # 20:30 UTC is 21:30 in Berlin (CET, +1): quiet until 08:00 Berlin next day = 07:00 UTC.
    assert quiet_hours_end(dt.datetime(2026, 3, 10, 20, 30, tzinfo=utc), berlin, *night) == dt.datetime(
        2026, 3, 11, 7, 0, tzinfo=utc
    )
    # 02:00 UTC = 03:00 Berlin, after midnight: until 08:00 the same day.
    assert quiet_hours_end(dt.datetime(2026, 3, 11, 2, 0, tzinfo=utc), berlin, *night) == dt.datetime(
        2026, 3, 11, 7, 0, tzinfo=utc
    )
    # The night DST starts (29 March 2026, 02:00 -> 03:00): 22:00 UTC on the 28th is 23:00 CET;
    # the window ends at 08:00 CEST (+2) = 06:00 UTC.
    assert quiet_hours_end(dt.datetime(2026, 3, 28, 22, 0, tzinfo=utc), berlin, *night) == dt.datetime(
        2026, 3, 29, 6, 0, tzinfo=utc
    )
    # 12:00 UTC = 13:00 Berlin: outside the night window; inside a 12:30–14:00 one until 13:00 UTC.
    assert quiet_hours_end(dt.datetime(2026, 3, 10, 12, 0, tzinfo=utc), berlin, *night) is None
    assert quiet_hours_end(
        dt.datetime(2026, 3, 10, 12, 0, tzinfo=utc), berlin, dt.time(12, 30), dt.time(14)
    ) == dt.datetime(2026, 3, 10, 13, 0, tzinfo=utc)
    # Exactly at the end the window is over; no window when start == end.
    assert quiet_hours_end(dt.datetime(2026, 3, 11, 7, 0, tzinfo=utc), berlin, *night) is None
    assert quiet_hours_end(dt.datetime(2026, 3, 11, 7, 0, tzinfo=utc), berlin, dt.time(8), dt.time(8)) is None


@pytest.mark.django_db
def test_quiet_hours_delay_marketing_until_the_window_ends_in_the_contacts_zone(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    vladivostok = zoneinfo.ZoneInfo("Asia/Vladivostok")  # UTC+10, no DST
    local_now = timezone.now().astimezone(vladivostok)
    # A window around the contact's present local time, ending two hours from now (whole minute).
    ends = (local_now + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    caps(shop, quiet_hours_start=(local_now - dt.timedelta(hours=1)).time(), quiet_hours_end=ends.time())
    far_east = contact(shop, "east@example.com", time_zone="Asia/Vladivostok")
    # Moscow (the workspace's zone, UTC+3) is seven hours behind: outside that window now.
    no_zone = contact(shop, "moscow@example.com")
    enqueue(shop, "broadcast:50", [far_east, no_zone], template(shop))
    enqueue(shop, "step:50", [far_east], template(shop, message_class=MessageClass.TRANSACTIONAL))

    messages_send_due()

    delayed = message_of("broadcast:50", far_east)
    assert (delayed.state, delayed.reason) == ("queued", "quiet_hours")
    assert delayed.due_at == ends.astimezone(dt.UTC)
    assert message_of("broadcast:50", no_zone).state == "sent"
    assert message_of("step:50", far_east).state == "sent"  # transactional mail keeps no quiet hours
    assert [m["To"] for m in smtp.to("east@example.com")] == ["east@example.com"]
    # Not due yet: the next drain leaves it alone; once due it goes out.
    assert messages_send_due() == 0
    Message.objects.filter(pk=delayed.pk).update(due_at=timezone.now())
    caps(shop, quiet_hours_start=None, quiet_hours_end=None)
    messages_send_due()
    assert Message.objects.get(pk=delayed.pk).state == "sent"


# --- provider errors --------------------------------------------------------------------------


@pytest.mark.django_db
def test_transient_refusal_retries_with_backoff_then_gives_up(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    person = contact(shop, "busy@example.net")
    smtp.refuse["busy@example.net"] = "451 4.3.0 Mailbox busy, try later"
    enqueue(shop, "broadcast:60", [person], template(shop))
    before = timezone.now()

    messages_send_due()

    row = message_of("broadcast:60", person)
    assert (row.state, row.attempts) == ("queued", 1)
    assert "451" in row.error and "Mailbox busy" in row.error
    # First backoff: one minute.
    assert before + dt.timedelta(minutes=1) <= row.due_at <= timezone.now() + dt.timedelta(minutes=1)
    assert messages_send_due() == 0  # not due yet

    # Second failure: five minutes.
    Message.objects.filter(pk=row.pk).update(due_at=timezone.now())
    before = timezone.now()
    messages_send_due()
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("queued", 2)
    assert before + dt.timedelta(minutes=5) <= row.due_at <= timezone.now() + dt.timedelta(minutes=5)

    # The fifth failure is final.
    Message.objects.filter(pk=row.pk).update(due_at=timezone.now(), attempts=4)
    messages_send_due()
    row.refresh_from_db()
    assert (row.state, row.reason, row.attempts) == ("failed", "retries_exhausted", 5)
    assert smtp.received == []

    # A later success after a retry: the server takes it again.
    other = contact(shop, "later@example.net")
    smtp.refuse["later@example.net"] = "421 4.7.0 Slow down"
    enqueue(shop, "broadcast:61", [other], template(shop))
    messages_send_due()
    del smtp.refuse["later@example.net"]
    Message.objects.filter(source="broadcast:61").update(due_at=timezone.now())
    messages_send_due()
    assert (message_of("broadcast:61", other).state, message_of("broadcast:61", other).attempts) == ("sent", 1)
    assert len(smtp.to("later@example.net")) == 1


@pytest.mark.django_db
def test_permanent_refusal_fails_the_message(shop: Workspace, provider: Provider, smtp: SmtpServer) -> None:
    nobody = contact(shop, "nobody@example.net")
    fine = contact(shop, "fine@example.net")
    smtp.refuse["nobody@example.net"] = "550 5.1.1 No such user"
    enqueue(shop, "broadcast:62", [nobody, fine], template(shop))
    messages_send_due()
    row = message_of("broadcast:62", nobody)
    assert (row.state, row.reason) == ("failed", "rejected") and "550" in row.error and "No such user" in row.error
    assert message_of("broadcast:62", fine).state == "sent"  # the connection goes on


@pytest.mark.django_db
def test_an_unreachable_server_requeues_without_handing_anything_over(shop: Workspace) -> None:
    provider_create(
        workspace=shop,
        name="Down",
        kind="smtp",
        credentials={"host": "127.0.0.1", "port": _free_port(), "use_tls": False, "timeout": 2},
        is_default=True,
    )
    people = [contact(shop, f"d{i}@example.com") for i in range(3)]
    enqueue(shop, "broadcast:63", people, template(shop))
    messages_send_due()
    rows = Message.objects.filter(source="broadcast:63")
    assert set(rows.values_list("state", "attempts")) == {("queued", 1)}


@pytest.mark.django_db
def test_render_errors_fail_the_message(acme: Workspace) -> None:
    person = contact(acme, "p@example.com")
    deleted = template(acme)
    enqueue(acme, "broadcast:64", [person], deleted)
    deleted.delete()
    too_big = template(
        acme, mjml=BODY.replace("Здравствуйте", "{% for i in event.items %}{{ event.blob }}{% endfor %}")
    )
    enqueue(acme, "broadcast:65", [person], too_big, data={"event": {"items": list(range(3000)), "blob": "x" * 5000}})
    messages_send_due()
    row = message_of("broadcast:64", person)
    assert (row.state, row.reason) == ("failed", "render_error")
    row = message_of("broadcast:65", person)
    assert (row.state, row.reason) == ("failed", "render_error")
    assert "characters" in row.error  # the sandbox's output size cap
    assert OutboxMessage.objects.count() == 0


# --- tests from the editor --------------------------------------------------------------------


@pytest.mark.django_db
def test_send_test_bypasses_list_caps_and_quiet_hours_but_not_hard_bounces(
    shop: Workspace, provider: Provider, smtp: SmtpServer
) -> None:
    local_now = timezone.now().astimezone(zoneinfo.ZoneInfo("Europe/Moscow"))
    caps(
        shop,
        daily_cap=0,
        quiet_hours_start=(local_now - dt.timedelta(hours=1)).time(),
        quiet_hours_end=(local_now + dt.timedelta(hours=1)).time(),
    )
    sample = contact(shop, "sample@example.com", first_name="Ольга")
    tpl = template(shop)
    test = message_send_test(
        workspace=shop, template=tpl, to_email="me@romashka.example", sample_contact=sample, event={"order_id": "T-1"}
    )
    assert test.source.startswith("test:") and test.contact_id is None
    refused = message_send_test(workspace=shop, template=tpl, to_email="bounced@romashka.example")
    Suppression.objects.create(
        workspace=shop, email_hash=email_hash("bounced@romashka.example"), reason=SuppressionReason.HARD_BOUNCE
    )
    # Asked now, the test is refused at once; the one asked before the bounce is suppressed at send time.
    with pytest.raises(ValidationError, match="on the suppression list"):
        message_send_test(workspace=shop, template=tpl, to_email="bounced@romashka.example")

    messages_send_due()

    (mail,) = smtp.to("me@romashka.example")
    assert mail["Subject"] == "Привет, Ольга! Скидка 20%"
    assert "Ваш заказ T-1." in mail.get_body(("plain",)).get_content()
    test.refresh_from_db()
    refused.refresh_from_db()
    assert test.state == "sent"
    assert (refused.state, refused.reason) == ("suppressed", "suppressed")
    assert smtp.to("bounced@romashka.example") == []
    assert not Contact.objects.filter(email="me@romashka.example").exists()


# --- claiming ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_a_row(acme: Workspace) -> None:
    """Two workers claim at once: SKIP LOCKED gives each its own rows."""
    import threading

    from campaigns.delivery.claims import message_claim_batch

    people = [contact(acme, f"c{i}@example.com") for i in range(300)]
    enqueue(acme, "broadcast:70", people, template(acme))
    results: list[list[int]] = []
    barrier = threading.Barrier(3)

    def claim(offset: int) -> None:
        barrier.wait()
        try:
            token = timezone.now() + dt.timedelta(microseconds=offset)
            mine: list[int] = []
            while ids := message_claim_batch(limit=7, token=token):
                mine.extend(ids)
            results.append(mine)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [i for batch in results for i in batch]
    assert len(claimed) == 300 and len(set(claimed)) == 300


# --- the bytes on the wire --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_fast_mime_writer_gives_the_standard_librarys_bytes(shop: Workspace) -> None:
    """The composer writes the MIME bytes with shortcuts (campaigns.delivery.composer._Generator);
    for a message with long lines, a long non-ASCII subject, a quoted sender name and all our
    headers they must be exactly what the standard library's generator makes of it."""
    from email.generator import BytesGenerator
    from io import BytesIO

    from campaigns.delivery.composer import compose

    person = contact(shop, "anna@example.ru", first_name="Анна", city="Москва")
    long_line = " ".join(f'<a href="https://shop.example/p/{n}">Товар {n}</a>' for n in range(60))
    tpl = template(
        shop,
        subject="Анна, " + "очень длинная тема письма со скидками " * 4,
        mjml=BODY.replace("</mj-text>", f"</mj-text><mj-raw>{long_line}</mj-raw>", 1),
    )
    enqueue(shop, "broadcast:99", [person], tpl)
    message = message_of("broadcast:99", person)
    sender = SenderIdentity.objects.create(
        workspace=shop,
        from_name='Магазин "Ромашка", СПб',
        from_email="shop@romashka.example",
        reply_to="r@romashka.example",
    )
    composed = compose(
        message, workspace=shop, template=tpl, contact={"first_name": "Анна"}, event={},
        delivery_settings=DeliverySettings(workspace=shop), sender=sender, to_email=person.email,
    )  # fmt: skip
    mime = composed.email.message()
    fast = mime.as_bytes(linesep="\r\n")
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False).flatten(mime, linesep="\r\n")
    assert fast == out.getvalue()
    assert max(len(line) for line in fast.split(b"\r\n")) <= 998
    parsed = email.message_from_bytes(fast, policy=email.policy.default)
    assert parsed["Subject"] == composed.subject
    assert parsed["From"].addresses[0].display_name == 'Магазин "Ромашка", СПб'
    assert "Товар 59" in parsed.get_body(("html",)).get_content()


MIME_CASES = [
    # (from header, reply-to, subject, text, html)
    ('"Bench Shop" <shop@bench.example>', "", "Anna, this week's picks", "Hello Anna!\n", "<p>Hi</p>"),
    (
        '"Магазин \\"Ромашка\\", СПб" <shop@romashka.example>',
        "r@romashka.example",
        "Анна, " + "очень длинная тема письма со скидками " * 4,
        "Здравствуйте, Анна!\n\n.точка в начале строки\n",
        "<p>" + " ".join(f'<a href="https://shop.example/p/{n}">Товар {n}</a>' for n in range(60)) + "</p>",
    ),
    (
        '"Shop, Inc." <news@shop.example>',
        "",
        "A plain ASCII subject that is much longer than the seventy-eight characters of a header line",
        "Windows line ends\r\nand a lone\rcarriage return\n",
        "<p>CRLF\r\nin the HTML\r\n= and tabs\t \n</p>",
    ),
    ("shop@bench.example", "", "", "x\n", ""),
    # A text line over 998 bytes: Django quoted-printable-encodes the text part (its own path).
    ('"Bench" <shop@bench.example>', "", "Long", "y" * 1200 + "\n", "<p>z</p>"),
]


@pytest.mark.parametrize("case", range(len(MIME_CASES)))
def test_the_composers_mime_bytes_are_djangos(case: int) -> None:
    """The composer writes a send-loop message's bytes itself (campaigns.delivery.composer.
    mime_bytes); they must be exactly what Django's EmailMultiAlternatives and the generator
    make of the same message (same Date and boundary), for awkward headers and bodies too."""
    import re

    from campaigns.delivery.composer import _Prepared, mime_bytes

    from_email, reply_to, subject, text, html = MIME_CASES[case]
    prepared = _Prepared(
        from_email=from_email,
        to="anna@example.ru",
        reply_to=reply_to,
        subject=subject,
        text=text,
        html=html,
        headers={"Feedback-ID": "broadcast-1:marketing:1:esp", "List-Unsubscribe": "<https://x.test/e/u/abc>"},
        metadata={"esp_message_id": "1"},
    )
    date = "Mon, 23 Nov 2026 19:23:52 -0000"
    django_email = prepared.email()
    django_email.extra_headers = {"Date": date, **django_email.extra_headers}
    django_mime = django_email.message()
    ours = mime_bytes(prepared, date=date)
    if case == len(MIME_CASES) - 1:
        assert ours is None  # left to Django
        return
    assert ours is not None
    boundary = re.search(rb'boundary="([^"]+)"', ours).group(1).decode()  # type: ignore[union-attr]
    django_mime.set_boundary(boundary)
    assert ours == django_mime.as_bytes(linesep="\r\n")
    assert prepared.envelope_from == from_email.rpartition("<")[2].rstrip(">")
    parsed = email.message_from_bytes(ours, policy=email.policy.default)
    assert parsed["Subject"].strip() == " ".join(subject.split())
    assert parsed["Message-ID"] == prepared.message_id


@pytest.mark.django_db
def test_a_connection_lost_during_the_hand_over_is_in_doubt_not_retried(
    acme: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient failure with the provider's reply code is a refusal (retried); one without
    (the connection broke, maybe after the data went out) may have delivered: in doubt."""
    from campaigns.delivery import sender as sender_module
    from campaigns.providers.base import TransientSendError, Transport

    failures = {
        "dropped@example.com": TransientSendError("SMTP connection failed: Connection reset by peer"),
        "busy@example.com": TransientSendError("451 4.3.0 Try later", code=451),
    }

    class Flaky(Transport):
        def send(self, email: Any) -> str:
            raise failures[email.to[0]]

    monkeypatch.setattr(sender_module, "transport_for", lambda provider, workspace_id=None: Flaky())
    dropped, busy = contact(acme, "dropped@example.com"), contact(acme, "busy@example.com")
    enqueue(acme, "broadcast:80", [dropped, busy], template(acme))
    messages_send_due()
    lost = message_of("broadcast:80", dropped)
    assert (lost.state, lost.reason, lost.attempts) == ("in_doubt", "crashed", 0)
    assert "Connection reset" in lost.error
    retried = message_of("broadcast:80", busy)
    assert (retried.state, retried.attempts) == ("queued", 1)


def test_quoted_printable_by_lines_is_byte_for_byte_binascii() -> None:
    # Trailing spaces, lines of exactly the soft-break length, "=", non-ASCII, empty lines,
    # NUL: each line encoded alone must come out as in the whole text, cached or not.
    pieces = [b"a", b" ", b"\t", b"=", b"\n", b".", "é".encode(), b"x" * 73, b"x" * 75, b"x" * 80, b"\xff", b"\x00"]
    generator = random.Random(5)  # noqa: S311 - reproducible test texts, not secrets
    for _ in range(20_000):
        text = b"".join(generator.choice(pieces) for _ in range(generator.randint(0, 40)))
        expected = binascii.b2a_qp(text, istext=True)
        assert quoted_printable(text) == expected
        assert quoted_printable(text) == expected  # from the remembered lines
    with_cr = b"line one\r\nline two  \r\n"
    assert quoted_printable(with_cr) == binascii.b2a_qp(with_cr, istext=True)


@pytest.mark.django_db
def test_after_a_dropped_connection_the_rest_of_the_batch_goes_over_a_new_one(
    acme: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is composed before the hand-overs begin (two phases): a connection closed after
    an error in between is opened again for the next message, never written to once closed."""
    from campaigns.delivery import sender as sender_module
    from campaigns.providers.base import TransientSendError, Transport

    opened: list[Transport] = []
    delivered: list[str] = []

    class Breaking(Transport):
        def __init__(self) -> None:
            self.closed = False
            opened.append(self)

        def close(self) -> None:
            self.closed = True

        def send(self, email: Any) -> str:
            assert not self.closed, "written to after close"
            if email.to[0] == "first@example.com" and len(opened) == 1:
                raise TransientSendError("451 4.4.2 Connection dropped", code=451)
            delivered.append(email.to[0])
            return f"id-{len(delivered)}"

    monkeypatch.setattr(sender_module, "transport_for", lambda provider, workspace_id=None: Breaking())
    people = [contact(acme, f"{name}@example.com") for name in ("first", "second", "third")]
    enqueue(acme, "broadcast:81", people, template(acme))

    messages_send_due()

    assert len(opened) == 2 and opened[0].closed
    assert sorted(delivered) == ["second@example.com", "third@example.com"]
    states = {m.to_email: (m.state, m.attempts) for m in Message.objects.filter(source="broadcast:81")}
    assert states == {
        "first@example.com": ("queued", 1),  # a refusal with a reply code: retried later
        "second@example.com": ("sent", 0),
        "third@example.com": ("sent", 0),
    }


@pytest.mark.django_db
def test_a_message_taken_back_after_its_envelope_went_ahead_is_never_delivered(
    shop: Workspace, pipelining_smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message's envelope travels with the previous message's data. If the next row is no
    longer this worker's when its turn comes (recovery took it back, another worker claimed
    it), its data never goes: the server, left waiting for it, loses the connection."""
    from campaigns.providers.smtp import SmtpTransport

    provider_create(
        workspace=shop,
        name="Pipelining relay",
        kind="smtp",
        credentials={"host": "127.0.0.1", "port": pipelining_smtp.port, "use_tls": False, "timeout": 5},
        is_default=True,
    )
    people = [contact(shop, f"{name}@example.com") for name in ("first", "second", "third")]
    enqueue(shop, "broadcast:82", people, template(shop))
    second = message_of("broadcast:82", people[1])
    other_worker = timezone.now() + dt.timedelta(minutes=5)
    announced: list[list[str]] = []
    send_prepared = SmtpTransport.send_prepared

    def send_then_lose_the_next(self: SmtpTransport, prepared: Any, following: Any = None) -> str:
        announced.append(following.to if following is not None else [])
        sent = send_prepared(self, prepared, following)
        if prepared.to == ["first@example.com"]:
            Message.objects.filter(pk=second.pk).update(claimed_at=other_worker)
        return sent

    monkeypatch.setattr(SmtpTransport, "send_prepared", send_then_lose_the_next)
    messages_send_due()

    assert announced[0] == ["second@example.com"]  # its envelope went ahead with the first's data
    assert [r.rcpt_tos for r in pipelining_smtp.received] == [["first@example.com"], ["third@example.com"]]
    states = {m.to_email or m.contact.email: m.state for m in Message.objects.filter(source="broadcast:82")}
    assert states == {
        "first@example.com": MessageState.SENT,
        "second@example.com": MessageState.CLAIMED,  # the other worker's, untouched
        "third@example.com": MessageState.SENT,
    }


@pytest.mark.django_db
def test_the_links_array_literal_gives_back_every_url_as_it_was() -> None:
    from campaigns.delivery.sender import _text_array

    values = ['https://x.test/a?b="c"', "back\\slash\\", "comma,{brace} space", "", "Ünïcode ✓", "NULL", "'"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::text[]", [_text_array(values), _text_array([])])
        assert cursor.fetchone() == (values, [])


@pytest.mark.django_db
@pytest.mark.parametrize(("fresh_seconds", "loads"), [(5.0, 1), (-1.0, 2)])
def test_a_drain_reuses_its_lookups_while_they_are_fresh(
    acme: Workspace, monkeypatch: pytest.MonkeyPatch, fresh_seconds: float, loads: int
) -> None:
    """The workspace, its delivery settings, templates, senders and providers are loaded once
    for a broadcast's batches while fresh; stale, each batch loads them again."""
    from django.test.utils import CaptureQueriesContext

    from campaigns.delivery import lookups

    monkeypatch.setattr(lookups, "LOOKUPS_FRESH_SECONDS", fresh_seconds)
    people = [contact(acme, f"reader{n}@example.com") for n in range(4)]
    enqueue(acme, "broadcast:83", people, template(acme))
    with CaptureQueriesContext(connection) as queries:
        assert messages_send_due(batch_size=2) == 4
    settings_loads = [q for q in queries.captured_queries if 'FROM "campaigns_deliverysettings"' in q["sql"]]
    assert len(settings_loads) == loads
    assert OutboxMessage.objects.count() == 4
