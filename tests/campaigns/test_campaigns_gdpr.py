"""GDPR and the send log: a contact's export holds its emails and what happened to them; an
erasure leaves the message rows (for the counts) without the person — no address, subject,
data, link, user agent or IP anywhere in the database — and touches no other workspace."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from audiences import gdpr
from audiences.models import Contact
from audiences.services import contact_save
from campaigns.models import Message, MessageEvent
from esp.models import Workspace
from tests.esp.test_api_keys import _tables_containing
from tests.factories import EmailTemplateFactory, MessageEventFactory, MessageFactory

pytestmark = pytest.mark.django_db

ADDRESS = "erase.me@example.com"
LOCAL_PART = "erase.me"
IP = "203.0.113.77"
AGENT = "Thunderbird/115.3 (Eve's laptop)"
T0 = dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def person(acme: Workspace) -> Contact:
    """A contact with two sent emails (opened and clicked, a bounce report), a failed one whose
    error quotes the address, and a test send to the address without a contact row."""
    contact, _ = contact_save(workspace=acme, data={"email": "Erase.Me@Example.com", "first_name": "Eve"})
    template = EmailTemplateFactory(workspace=acme, name="Welcome")
    welcome = MessageFactory(
        contact=contact,
        template=template,
        subject="Welcome, Eve <Erase.Me@Example.com>",
        data={"event": {"cart": "C-1", "email": ADDRESS}},
        links=[f"https://shop.test/account?email={ADDRESS}"],
        source="step:1",
        created_at=T0,
    )
    MessageEventFactory(
        message=welcome, type="opened", occurred_at=T0 + dt.timedelta(hours=1), user_agent=AGENT,
        event_key=f"open:{welcome.pk}:{IP}:28650000", details={"ip": IP},
    )  # fmt: skip
    MessageEventFactory(
        message=welcome, type="clicked", occurred_at=T0 + dt.timedelta(hours=2), user_agent=AGENT,
        url=f"https://shop.test/account?email={ADDRESS}", event_key=f"click:{welcome.pk}:0:{IP}",
    )  # fmt: skip
    MessageFactory(
        contact=contact, source="tx:order-9", state="failed", reason="rejected", sent_at=None,
        error=f"550 5.1.1 <{ADDRESS}>: mailbox unavailable", created_at=T0 + dt.timedelta(days=1),
    )  # fmt: skip
    MessageFactory(
        workspace=acme, contact=None, to_email=ADDRESS, source="test:1", subject="Test for Eve",
        data={"contact": {"email": ADDRESS, "first_name": "Eve"}, "test": True}, created_at=T0 + dt.timedelta(days=2),
    )  # fmt: skip
    return contact


def test_export_holds_the_messages_and_their_events(acme_api: APIClient, person: Contact) -> None:
    response = acme_api.get(f"/api/v1/contacts/{person.pk}/export")
    assert response.status_code == 200
    messages = response.json()["email_messages"]
    assert [(m["source"], m["state"]) for m in messages] == [
        ("step:1", "sent"),
        ("tx:order-9", "failed"),
        ("test:1", "sent"),
    ]
    welcome = messages[0]
    assert welcome["template"] == "Welcome" and welcome["to_email"] == "Erase.Me@example.com"
    assert welcome["data"] == {"event": {"cart": "C-1", "email": ADDRESS}}
    assert [(e["type"], e["user_agent"]) for e in welcome["events"]] == [("opened", AGENT), ("clicked", AGENT)]
    assert welcome["events"][1]["url"] == f"https://shop.test/account?email={ADDRESS}"
    assert messages[1]["error"].startswith("550 5.1.1") and messages[2]["to_email"] == ADDRESS


def test_erase_leaves_no_personal_data_in_the_send_log(
    acme_api: APIClient, acme: Workspace, globex: Workspace, person: Contact
) -> None:
    theirs = MessageFactory(contact=Contact.objects.create(workspace=globex, email=ADDRESS), subject="Globex hello")
    MessageEventFactory(message=theirs, type="opened", user_agent=AGENT, event_key=f"open:{theirs.pk}:{IP}:1")
    before = set(_tables_containing(LOCAL_PART))
    assert {"campaigns_message", "campaigns_messageevent"} <= before
    assert _tables_containing(IP) == ["campaigns_messageevent"]

    assert acme_api.post(f"/api/v1/contacts/{person.pk}/erase").status_code == 204

    # Only globex's rows still name the person: acme's are clean.
    acme_messages = Message.objects.filter(workspace=acme)
    acme_events = MessageEvent.objects.filter(workspace=acme)
    for trace in (LOCAL_PART, "Erase.Me", IP, "Eve", "Thunderbird"):
        assert not acme_messages.extra(where=["campaigns_message::text LIKE %s"], params=[f"%{trace}%"]).exists()
        assert not acme_events.extra(where=["campaigns_messageevent::text LIKE %s"], params=[f"%{trace}%"]).exists()
    # The rows stay for the counts: states, reasons and event types, without the person.
    assert sorted(acme_messages.values_list("source", "state", "reason")) == [
        ("step:1", "sent", ""),
        ("test:1", "sent", ""),
        ("tx:order-9", "failed", "rejected"),
    ]
    assert set(acme_messages.values_list("contact_id", "to_email", "subject", "error")) == {(None, "", "", "")}
    assert [e.type for e in acme_events.order_by("occurred_at")] == ["opened", "clicked"]
    assert set(acme_events.values_list("contact_id", "url", "user_agent")) == {(None, "", "")}
    assert all(key.startswith("erased:") for key in acme_events.values_list("event_key", flat=True))
    # Globex's own copy of the address is its business.
    theirs.refresh_from_db()
    assert theirs.to_email == ADDRESS and MessageEvent.objects.get(message=theirs).user_agent == AGENT


def test_erase_leaves_the_address_in_no_table(acme_api: APIClient, person: Contact) -> None:
    assert acme_api.post(f"/api/v1/contacts/{person.pk}/erase").status_code == 204
    for trace in (LOCAL_PART, "Erase.Me", IP, "Thunderbird"):
        assert _tables_containing(trace) == [], trace
    assert Message.objects.count() == 3 and MessageEvent.objects.count() == 2


def test_registered_once(person: Contact) -> None:
    from campaigns.gdpr import erase_messages, export_messages

    assert gdpr.CONTACT_EXPORTERS.count(export_messages) == 1
    assert gdpr.CONTACT_ERASERS.count(erase_messages) == 1
