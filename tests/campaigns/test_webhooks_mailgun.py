"""Mailgun's signed JSON webhooks: the signature is computed here as Mailgun computes it
(HMAC-SHA256 of timestamp + token with the webhook signing key); a wrong one changes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from typing import Any

import pytest

from audiences.models import ConsentRecord, Event, MailingList, Subscription, Suppression
from campaigns.models import DeliverySettings, MessageEvent
from tests.campaigns.payloads import (
    MAILGUN_MESSAGE_ID,
    counts,
    load,
    make_message,
    make_provider,
    message_state,
    post_json,
)

SIGNING_KEY = "key-4f1e2d3c4b5a69788796a5b4c3d2e1f0"
UTC = dt.UTC


def signed(name: str, key: str = SIGNING_KEY, **changes: Any) -> dict[str, Any]:
    """As Mailgun posts it: a fresh token and the current time in each request's signature."""
    payload = load(name)
    payload["event-data"].update(changes)
    block = payload["signature"]
    block["token"] = secrets.token_hex(25)
    block["timestamp"] = str(int(time.time()))
    block["signature"] = hmac.new(
        key.encode(), f"{block['timestamp']}{block['token']}".encode(), hashlib.sha256
    ).hexdigest()
    return payload


@pytest.fixture
def mailgun(acme: Any) -> Any:
    return make_provider(acme, "mailgun", api_key="key-api", webhook_signing_key=SIGNING_KEY)


@pytest.fixture
def message(acme: Any, mailgun: Any) -> Any:
    return make_message(
        acme, provider=mailgun, provider_message_id=MAILGUN_MESSAGE_ID, sent_at=dt.datetime(2026, 3, 2, 9, tzinfo=UTC)
    )


@pytest.mark.django_db
def test_delivered_opened_clicked(acme, mailgun, message):
    for name in ("mailgun_delivered.json", "mailgun_opened.json", "mailgun_clicked.json"):
        response = post_json(mailgun, signed(name), auth=None)
        assert response.status_code == 200, response.content
        assert response.json()["recorded"] == 1
    state = message_state(message)
    assert state["delivery_status"] == "delivered"
    assert state["delivered_at"] == dt.datetime.fromtimestamp(1772442001.753542, tz=UTC)
    assert state["opened_at"] == dt.datetime.fromtimestamp(1772445600.25, tz=UTC)
    assert state["clicked_at"] == dt.datetime.fromtimestamp(1772445660.5, tz=UTC)
    keys = dict(MessageEvent.objects.filter(message=message).values_list("type", "event_key"))
    # Mailgun's own event ids (stable across its retries), not the signature tokens.
    assert keys == {
        "delivered": "mailgun:CPgfbmQMTCKtHW6uIWtuVe",
        "opened": "mailgun:Ase7i2zsRYeDXztHGENqRA",
        "clicked": "mailgun:Ase7i2zsRYeDXztHGENqRB",
    }
    click = MessageEvent.objects.get(message=message, type="clicked")
    assert click.url == "https://shop.acme.example/sale"
    assert "Firefox/123.0" in click.user_agent
    assert click.is_machine is False
    names = sorted(Event.objects.filter(workspace=acme).values_list("name", flat=True))
    assert names == ["Email Clicked", "Email Delivered", "Email Opened"]
    clicked = Event.objects.get(workspace=acme, name="Email Clicked")
    assert clicked.properties["url"] == "https://shop.acme.example/sale"
    assert clicked.properties["message_id"] == message.pk
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_bad_or_missing_signature_changes_nothing(acme, mailgun, message):
    before = counts(acme)
    wrong_key = post_json(mailgun, signed("mailgun_failed_permanent.json", key="not-the-key"), auth=None)
    assert wrong_key.status_code == 400
    tampered = signed("mailgun_failed_permanent.json")
    tampered["signature"]["timestamp"] = "1772442999"  # the signed values changed after signing
    assert post_json(mailgun, tampered, auth=None).status_code == 400
    unsigned = load("mailgun_failed_permanent.json")
    del unsigned["signature"]
    assert post_json(mailgun, unsigned, auth=None).status_code == 400
    assert counts(acme) == before
    assert message_state(message)["delivery_status"] == ""

    # Without a signing key the provider takes no Mailgun webhooks (nothing could check them).
    unkeyed = make_provider(acme, "mailgun", api_key="key-api")
    assert post_json(unkeyed, signed("mailgun_failed_permanent.json"), auth=None).status_code == 403


@pytest.mark.django_db
def test_basic_auth_when_set_is_checked_too(acme, message):
    both = make_provider(acme, "mailgun", webhook_signing_key=SIGNING_KEY, webhook_secret="hooks:pw")
    message.provider = both
    message.save()
    assert post_json(both, signed("mailgun_delivered.json"), auth=None).status_code == 400
    assert post_json(both, signed("mailgun_delivered.json"), auth="hooks:pw").status_code == 200
    assert message_state(message)["delivery_status"] == "delivered"


@pytest.mark.django_db
def test_permanent_failure_is_a_hard_bounce_and_replay_counts_once(acme, mailgun, message):
    payload = signed("mailgun_failed_permanent.json")
    assert post_json(mailgun, payload, auth=None).status_code == 200
    state = message_state(message)
    assert state["delivery_status"] == "bounced"
    assert state["bounced_at"] == dt.datetime.fromtimestamp(1772442002.125, tz=UTC)
    assert Suppression.objects.get(workspace=acme).reason == "hard_bounce"
    before = counts(acme)
    assert before == {"message_events": 1, "events": 1, "pending": 1, "suppressions": 1}
    replay = post_json(mailgun, payload, auth=None)
    assert replay.json()["replayed"] == 1
    assert counts(acme) == before


@pytest.mark.django_db
def test_temporary_failures_are_soft_bounces_up_to_the_limit(acme, mailgun, message):
    DeliverySettings.objects.create(workspace=acme, soft_bounce_limit=2)
    assert post_json(mailgun, signed("mailgun_failed_temporary.json"), auth=None).status_code == 200
    assert message_state(message)["delivery_status"] == "soft_bounced"
    assert not Suppression.objects.exists()
    # Mailgun retries the same message and reports again: still one message soft-bounced.
    retry = signed("mailgun_failed_temporary.json", id="Fs7-retry-2", timestamp=1772442700.0)
    post_json(mailgun, retry, auth=None)
    assert not Suppression.objects.exists()
    # A second message soft-bounces: two in a row.
    other = make_message(acme, provider=mailgun, provider_message_id="<other@mg.acme.example>", source="broadcast:2")
    second = signed("mailgun_failed_temporary.json", id="Fs7-other", timestamp=1772529000.0)
    second["event-data"]["message"] = {"headers": {"message-id": "other@mg.acme.example"}}
    post_json(mailgun, second, auth=None)
    assert message_state(other)["delivery_status"] == "soft_bounced"
    assert Suppression.objects.get(workspace=acme).reason == "soft_bounces"
    # Greylisting is a delay, not a bounce.
    third = make_message(acme, provider=mailgun, provider_message_id="<third@mg.acme.example>", source="broadcast:3")
    grey = signed("mailgun_failed_temporary.json", id="grey-1", reason="greylisted")
    grey["event-data"]["message"] = {"headers": {"message-id": "third@mg.acme.example"}}
    post_json(mailgun, grey, auth=None)
    assert message_state(third)["delivery_status"] == "deferred"


@pytest.mark.django_db
def test_complaint_suppresses(acme, mailgun, message):
    post_json(mailgun, signed("mailgun_complained.json"), auth=None)
    state = message_state(message)
    assert (state["delivery_status"], state["complained_at"]) == (
        "complained",
        dt.datetime.fromtimestamp(1772449200.0, tz=UTC),
    )
    assert Suppression.objects.get(workspace=acme).reason == "complaint"


@pytest.mark.django_db
def test_unsubscribe_is_the_same_as_our_own_link(acme, mailgun):
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    message = make_message(acme, provider=mailgun, provider_message_id=MAILGUN_MESSAGE_ID, mailing_list=news)
    Subscription.objects.create(workspace=acme, contact=message.contact, mailing_list=news, status="subscribed")
    payload = signed("mailgun_unsubscribed.json")
    assert post_json(mailgun, payload, auth=None).status_code == 200
    subscription = Subscription.objects.get(contact=message.contact, mailing_list=news)
    assert subscription.status == "unsubscribed"
    assert ConsentRecord.objects.get(contact=message.contact).action == "unsubscribed"
    assert message_state(message)["unsubscribed_at"] is not None
    assert Event.objects.get(workspace=acme).name == "Email Unsubscribed"
    assert not Suppression.objects.exists()  # from the list, not from everything
    before = counts(acme)
    post_json(mailgun, payload, auth=None)
    assert counts(acme) == before
    assert ConsentRecord.objects.filter(contact=message.contact).count() == 1


@pytest.mark.django_db
def test_unknown_message_is_accepted_and_ignored(acme, mailgun):
    response = post_json(mailgun, signed("mailgun_failed_permanent.json"), auth=None)
    assert response.status_code == 200
    assert response.json()["unknown"] == 1
    assert counts(acme) == {"message_events": 0, "events": 0, "pending": 0, "suppressions": 0}


@pytest.mark.django_db
def test_a_replayed_request_changes_nothing_the_second_time(acme, mailgun):
    """Every kind of event posted twice (a retry or a captured request): the second changes
    nothing — events, suppressions, consent, subscriptions, the message's state."""
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    message = make_message(acme, provider=mailgun, provider_message_id=MAILGUN_MESSAGE_ID, mailing_list=news)
    Subscription.objects.create(workspace=acme, contact=message.contact, mailing_list=news, status="subscribed")
    names = [
        "mailgun_delivered.json",
        "mailgun_opened.json",
        "mailgun_clicked.json",
        "mailgun_failed_temporary.json",
        "mailgun_unsubscribed.json",
        "mailgun_complained.json",
        "mailgun_failed_permanent.json",
    ]
    for name in names:
        payload = signed(name)
        assert post_json(mailgun, payload, auth=None).status_code == 200
        before = (counts(acme), message_state(message), ConsentRecord.objects.count(), _subscriptions(acme))
        replay = post_json(mailgun, payload, auth=None)
        assert replay.status_code == 200 and replay.json()["recorded"] in (0, 1), name
        assert (counts(acme), message_state(message), ConsentRecord.objects.count(), _subscriptions(acme)) == before
        # The same event re-signed (Mailgun's retry with a new token) is the same event too.
        assert post_json(mailgun, signed(name), auth=None).status_code == 200
        assert counts(acme) == before[0], name


def _subscriptions(acme):
    return sorted(Subscription.objects.filter(workspace=acme).values_list("status", flat=True))


@pytest.mark.django_db
def test_a_captured_signature_cannot_carry_other_events(acme, mailgun, message):
    """Mailgun signs the token and timestamp, not the events: a token seen with one event is
    refused with another, and a signature older than a day is refused."""
    delivered = signed("mailgun_delivered.json")
    assert post_json(mailgun, delivered, auth=None).status_code == 200
    forged = load("mailgun_complained.json")
    forged["signature"] = dict(delivered["signature"])
    before = counts(acme)
    assert post_json(mailgun, forged, auth=None).status_code == 400
    assert counts(acme) == before and not Suppression.objects.exists()

    stale = load("mailgun_complained.json")
    block = stale["signature"]
    block["token"], block["timestamp"] = secrets.token_hex(25), str(int(time.time()) - 2 * 24 * 3600)
    block["signature"] = hmac.new(
        SIGNING_KEY.encode(), f"{block['timestamp']}{block['token']}".encode(), hashlib.sha256
    ).hexdigest()
    assert post_json(mailgun, stale, auth=None).status_code == 400
    assert counts(acme) == before and not Suppression.objects.exists()
