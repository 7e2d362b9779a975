"""campaigns.events.message_event_record: the one place a message's events are recorded (provider
webhooks and our own tracking endpoints). Expectations are hand-computed per case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audiences.models import Contact, Event, MailingList, PendingEvents, Suppression, email_hash
from campaigns.events import engagement_message_id, message_event_record
from campaigns.models import DeliverySettings, EmailTemplate, Message, MessageEvent
from esp.models import Workspace

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_message(
    workspace: Workspace, email: str = "ann@example.com", source: str = "broadcast:1", **fields: object
) -> Message:
    contact, _ = Contact.objects.get_or_create(workspace=workspace, email=email)
    template, _ = EmailTemplate.objects.get_or_create(
        workspace=workspace, name="Spring sale", defaults={"subject": "Sale", "mjml": "<mjml></mjml>"}
    )
    return Message.objects.create(
        workspace=workspace,
        contact=contact,
        source=source,
        template=template,
        to_email=email,
        state="sent",
        sent_at=T0,
        provider_message_id=f"pm-{source}-{email}",
        **fields,
    )


def record(message: Message, type: str, key: str, at: datetime = T0, **kwargs) -> bool:
    return message_event_record(message=message, type=type, occurred_at=at, event_key=key, **kwargs)


@pytest.mark.django_db
def test_delivered_moves_the_message_and_writes_the_engagement_event(acme, django_capture_on_commit_callbacks):
    message = make_message(acme)
    with django_capture_on_commit_callbacks() as callbacks:
        assert record(message, "delivered", "ses:abc", at=T0 + timedelta(seconds=5)) is True
    message.refresh_from_db()
    assert message.delivery_status == "delivered"
    assert message.delivered_at == T0 + timedelta(seconds=5)
    event = MessageEvent.objects.get(message=message)
    assert (event.type, event.event_key, event.contact_id, event.workspace_id) == (
        "delivered",
        "ses:abc",
        message.contact_id,
        acme.pk,
    )
    stored = Event.objects.get(workspace=acme)
    assert stored.name == "Email Delivered"
    assert stored.type == "track"
    assert stored.contact_id == message.contact_id
    assert stored.message_id == engagement_message_id("ses:abc")
    assert stored.occurred_at == T0 + timedelta(seconds=5)
    assert stored.properties == {
        "message_id": message.pk,
        "template_id": message.template_id,
        "template_name": "Spring sale",
        "source": "broadcast:1",
        "url": "",
        "is_machine": False,
    }
    # The pipeline gets the event like an ingested one: a PendingEvents row naming it, and the
    # task sent after commit.
    pending = PendingEvents.objects.get(workspace=acme)
    assert pending.event_ids == [stored.pk]
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_a_replayed_event_key_changes_nothing(acme):
    message = make_message(acme)
    assert record(message, "opened", "open:1", at=T0 + timedelta(minutes=3)) is True
    assert record(message, "opened", "open:1", at=T0 + timedelta(minutes=1)) is False
    message.refresh_from_db()
    assert message.opened_at == T0 + timedelta(minutes=3)
    assert MessageEvent.objects.count() == 1
    assert Event.objects.count() == 1
    assert PendingEvents.objects.count() == 1


@pytest.mark.django_db
def test_machine_opens_are_kept_but_set_no_open_time(acme):
    message = make_message(acme)
    assert record(message, "opened", "open:mpp", at=T0 + timedelta(minutes=1), is_machine=True) is True
    message.refresh_from_db()
    assert message.opened_at is None
    assert MessageEvent.objects.get().is_machine is True
    assert Event.objects.get().properties["is_machine"] is True
    # A later human open sets it; an earlier one that arrives late moves it back.
    record(message, "opened", "open:h1", at=T0 + timedelta(minutes=30))
    message.refresh_from_db()
    assert message.opened_at == T0 + timedelta(minutes=30)
    record(message, "opened", "open:h0", at=T0 + timedelta(minutes=10))
    message.refresh_from_db()
    assert message.opened_at == T0 + timedelta(minutes=10)


@pytest.mark.django_db
def test_a_click_implies_an_open(acme):
    message = make_message(acme)
    record(message, "clicked", "click:1", at=T0 + timedelta(hours=1), url="https://shop.test/sale")
    message.refresh_from_db()
    assert message.clicked_at == T0 + timedelta(hours=1)
    assert message.opened_at == T0 + timedelta(hours=1)
    stored = Event.objects.get()
    assert stored.name == "Email Clicked"
    assert stored.properties["url"] == "https://shop.test/sale"
    assert MessageEvent.objects.get().url == "https://shop.test/sale"
    # An open recorded earlier keeps its time.
    other = make_message(acme, source="broadcast:2")
    record(other, "opened", "open:o", at=T0 + timedelta(minutes=5))
    record(other, "clicked", "click:o", at=T0 + timedelta(minutes=9))
    other.refresh_from_db()
    assert (other.opened_at, other.clicked_at) == (T0 + timedelta(minutes=5), T0 + timedelta(minutes=9))


@pytest.mark.django_db
def test_hard_bounce_suppresses_the_address(acme):
    message = make_message(acme, email="Gone@Example.com")
    record(message, "bounced", "mailgun:b1", at=T0 + timedelta(minutes=2), details={"mta_response": "550 5.1.1"})
    message.refresh_from_db()
    assert message.delivery_status == "bounced"
    assert message.bounced_at == T0 + timedelta(minutes=2)
    suppression = Suppression.objects.get(workspace=acme)
    assert suppression.email_hash == email_hash("gone@example.com")
    assert suppression.reason == "hard_bounce"
    assert str(message.pk) in suppression.note
    stored = Event.objects.get()
    assert (stored.name, stored.properties["bounce_type"]) == ("Email Bounced", "hard")
    assert MessageEvent.objects.get().details == {"mta_response": "550 5.1.1"}


@pytest.mark.django_db
def test_complaint_suppresses_and_outranks_a_late_delivery(acme):
    message = make_message(acme)
    record(message, "complained", "pm:c1", at=T0 + timedelta(hours=2))
    # The delivery notification arrives after the complaint: the status stays "complained".
    record(message, "delivered", "pm:d1", at=T0 + timedelta(seconds=3))
    message.refresh_from_db()
    assert message.delivery_status == "complained"
    assert message.complained_at == T0 + timedelta(hours=2)
    assert message.delivered_at == T0 + timedelta(seconds=3)
    suppression = Suppression.objects.get(workspace=acme)
    assert suppression.reason == "complaint"
    assert sorted(Event.objects.values_list("name", flat=True)) == ["Email Complained", "Email Delivered"]


@pytest.mark.django_db
def test_deferred_then_delivered(acme):
    message = make_message(acme)
    record(message, "deferred", "k:1")
    message.refresh_from_db()
    assert message.delivery_status == "deferred"
    record(message, "delivered", "k:2", at=T0 + timedelta(hours=1))
    record(message, "deferred", "k:3", at=T0 + timedelta(minutes=5))  # out of order
    message.refresh_from_db()
    assert message.delivery_status == "delivered"
    assert Event.objects.filter(name="Email Deferred").count() == 2
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_soft_bounces_suppress_after_the_limit_in_a_row(acme):
    DeliverySettings.objects.create(workspace=acme, soft_bounce_limit=3)
    first = make_message(acme, source="broadcast:1")
    second = make_message(acme, source="broadcast:2")
    record(first, "soft_bounced", "sb:1", at=T0 + timedelta(days=1))
    record(first, "soft_bounced", "sb:1-retry", at=T0 + timedelta(days=1, hours=1))  # same message: one
    record(second, "soft_bounced", "sb:2", at=T0 + timedelta(days=2))
    assert not Suppression.objects.exists()
    second.refresh_from_db()
    assert second.delivery_status == "soft_bounced"
    assert second.bounced_at is None
    # A delivery in between starts the count again.
    third = make_message(acme, source="broadcast:3")
    record(third, "delivered", "d:3", at=T0 + timedelta(days=3))
    fourth = make_message(acme, source="broadcast:4")
    fifth = make_message(acme, source="broadcast:5")
    record(fourth, "soft_bounced", "sb:4", at=T0 + timedelta(days=4))
    record(fifth, "soft_bounced", "sb:5", at=T0 + timedelta(days=5))
    assert not Suppression.objects.exists()
    sixth = make_message(acme, source="broadcast:6")
    record(sixth, "soft_bounced", "sb:6", at=T0 + timedelta(days=6))
    suppression = Suppression.objects.get(workspace=acme)
    assert suppression.reason == "soft_bounces"
    assert "3" in suppression.note and str(sixth.pk) in suppression.note
    assert Event.objects.get(message_id=engagement_message_id("sb:6")).properties["bounce_type"] == "soft"


@pytest.mark.django_db
def test_the_default_limit_is_three_and_zero_never_suppresses(acme, globex):
    for n in range(3):
        record(make_message(acme, source=f"broadcast:{n}"), "soft_bounced", f"sb:{n}", at=T0 + timedelta(days=n))
    assert Suppression.objects.filter(workspace=acme).count() == 1

    DeliverySettings.objects.create(workspace=globex, soft_bounce_limit=0)
    for n in range(5):
        record(make_message(globex, source=f"broadcast:{n}"), "soft_bounced", f"sb:{n}", at=T0 + timedelta(days=n))
    assert not Suppression.objects.filter(workspace=globex).exists()


@pytest.mark.django_db
def test_event_keys_are_per_workspace(acme, globex):
    ours = make_message(acme)
    theirs = make_message(globex)
    assert record(ours, "delivered", "same-key") is True
    assert record(theirs, "delivered", "same-key") is True
    assert MessageEvent.objects.count() == 2
    assert Event.objects.filter(workspace=acme).count() == 1
    assert Event.objects.filter(workspace=globex).count() == 1


@pytest.mark.django_db
def test_rejected_fails_the_message(acme):
    message = make_message(acme)
    record(message, "rejected", "r:1")
    message.refresh_from_db()
    assert (message.state, message.reason, message.delivery_status) == ("failed", "rejected", "")
    assert not Event.objects.exists()  # no engagement event for a message that never left


@pytest.mark.django_db
def test_unsubscribed_sets_the_time(acme):
    mailing_list = MailingList.objects.create(workspace=acme, name="News")
    message = make_message(acme, mailing_list=mailing_list)
    record(message, "unsubscribed", "u:1", at=T0 + timedelta(hours=5))
    message.refresh_from_db()
    assert message.unsubscribed_at == T0 + timedelta(hours=5)
    assert Event.objects.get().name == "Email Unsubscribed"


@pytest.mark.django_db
def test_an_erased_contact_gets_no_engagement_event(acme):
    message = make_message(acme)
    Message.objects.filter(pk=message.pk).update(contact=None)
    message.refresh_from_db()
    assert record(message, "opened", "o:1") is True
    message.refresh_from_db()
    assert message.opened_at == T0
    assert not Event.objects.exists()
    assert MessageEvent.objects.get().contact_id is None


@pytest.mark.django_db
def test_the_pipeline_processes_engagement_events(acme, run_tasks_now, django_capture_on_commit_callbacks):
    message = make_message(acme)
    with django_capture_on_commit_callbacks(execute=True):
        record(message, "clicked", "c:1", url="https://shop.test/")
    assert not PendingEvents.objects.exists()  # processed and deleted by audiences.process_events
    assert Event.objects.get().name == "Email Clicked"
