"""Postmark's webhooks (it signs nothing: basic auth is required): Delivery, Bounce hard and
soft, SpamComplaint, Open, Click; replays; the SubscriptionChange that repeats a bounce."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from audiences.models import Event, Suppression
from campaigns.models import DeliverySettings, MessageEvent
from tests.campaigns.payloads import (
    POSTMARK_MESSAGE_ID,
    counts,
    load,
    make_message,
    make_provider,
    message_state,
    post_json,
)

UTC = dt.UTC


@pytest.fixture
def postmark(acme: Any) -> Any:
    return make_provider(acme, "postmark", server_token="pm-token", webhook_secret="esp-hooks:s3cret-Pa55")


@pytest.fixture
def message(acme: Any, postmark: Any) -> Any:
    return make_message(
        acme, provider=postmark, provider_message_id=POSTMARK_MESSAGE_ID, sent_at=dt.datetime(2026, 3, 2, 9, tzinfo=UTC)
    )


@pytest.mark.django_db
def test_delivery_open_click(acme, postmark, message):
    for name in ("postmark_delivery.json", "postmark_open.json", "postmark_click.json"):
        response = post_json(postmark, load(name))
        assert response.status_code == 200, response.content
        assert response.json()["recorded"] == 1
    state = message_state(message)
    assert state["delivery_status"] == "delivered"
    assert state["delivered_at"] == dt.datetime(2026, 3, 2, 9, 0, 1, 273539, tzinfo=UTC)
    assert state["opened_at"] == dt.datetime(2026, 3, 2, 10, 0, 0, 249368, tzinfo=UTC)
    assert state["clicked_at"] == dt.datetime(2026, 3, 2, 10, 1, 0, 906561, tzinfo=UTC)
    # Postmark gives ids only to bounces: the others are keyed by their content.
    keys = list(MessageEvent.objects.filter(message=message).values_list("event_key", flat=True))
    assert len(keys) == 3 and all(key.startswith("postmark:sha256:") for key in keys)
    assert MessageEvent.objects.get(message=message, type="clicked").url == "https://shop.acme.example/sale"
    assert sorted(Event.objects.filter(workspace=acme).values_list("name", flat=True)) == [
        "Email Clicked",
        "Email Delivered",
        "Email Opened",
    ]
    # Posted again (Postmark retries on any error): nothing more.
    before = counts(acme)
    for name in ("postmark_delivery.json", "postmark_open.json", "postmark_click.json"):
        assert post_json(postmark, load(name)).json()["replayed"] == 1
    assert counts(acme) == before


@pytest.mark.django_db
def test_hard_bounce_suppresses(acme, postmark, message):
    post_json(postmark, load("postmark_bounce_hard.json"))
    state = message_state(message)
    assert state["delivery_status"] == "bounced"
    assert state["bounced_at"] == dt.datetime(2026, 3, 2, 9, 0, 2, 396393, tzinfo=UTC)
    assert MessageEvent.objects.get(message=message).event_key == "postmark:4323372036854775807"
    suppression = Suppression.objects.get(workspace=acme)
    assert suppression.reason == "hard_bounce"
    assert suppression.email == "jane@example.com"
    # Postmark then reports the suppression it added: not a second bounce.
    response = post_json(postmark, load("postmark_subscription_change_bounce.json"))
    assert response.json() == {"received": 1, "recorded": 0, "replayed": 0, "unknown": 0, "ignored": 1}
    assert MessageEvent.objects.filter(message=message).count() == 1


@pytest.mark.django_db
def test_soft_bounces_suppress_after_the_limit(acme, postmark, message):
    DeliverySettings.objects.create(workspace=acme, soft_bounce_limit=3)
    soft = load("postmark_bounce_soft.json")
    post_json(postmark, soft)
    state = message_state(message)
    assert (state["delivery_status"], state["bounced_at"]) == ("soft_bounced", None)
    for n in (2, 3):
        make_message(acme, provider=postmark, provider_message_id=f"pm-{n}", source=f"broadcast:{n}")
        later = {**soft, "ID": soft["ID"] + n, "MessageID": f"pm-{n}", "BouncedAt": f"2026-03-0{n}T09:00:00Z"}
        post_json(postmark, later)
        assert Suppression.objects.filter(workspace=acme).count() == (1 if n == 3 else 0)
    assert Suppression.objects.get(workspace=acme).reason == "soft_bounces"
    assert Event.objects.filter(workspace=acme, name="Email Bounced", properties__bounce_type="soft").count() == 3


@pytest.mark.django_db
def test_spam_complaint_suppresses(acme, postmark, message):
    post_json(postmark, load("postmark_delivery.json"))
    post_json(postmark, load("postmark_spam_complaint.json"))
    state = message_state(message)
    assert state["delivery_status"] == "complained"
    assert state["complained_at"] == dt.datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    assert Suppression.objects.get(workspace=acme).reason == "complaint"


@pytest.mark.django_db
def test_basic_auth_is_required(acme, postmark, message):
    before = counts(acme)
    assert post_json(postmark, load("postmark_bounce_hard.json"), auth=None).status_code == 400
    assert post_json(postmark, load("postmark_bounce_hard.json"), auth="esp-hooks:wrong").status_code == 400
    assert counts(acme) == before
    assert message_state(message)["delivery_status"] == ""
    unprotected = make_provider(acme, "postmark", server_token="pm-token")
    assert post_json(unprotected, load("postmark_bounce_hard.json")).status_code == 403


@pytest.mark.django_db
def test_a_secret_being_rotated_accepts_both(acme, message):
    rotating = make_provider(acme, "postmark", webhook_secret="hooks:old\nhooks:new")
    message.provider = rotating
    message.save()
    assert post_json(rotating, load("postmark_delivery.json"), auth="hooks:old").status_code == 200
    assert post_json(rotating, load("postmark_open.json"), auth="hooks:new").status_code == 200
    assert post_json(rotating, load("postmark_click.json"), auth="hooks:other").status_code == 400


@pytest.mark.django_db
def test_a_replayed_event_changes_nothing_the_second_time(acme, postmark, message):
    """Every kind of Postmark event posted twice (Postmark retries on any error): bounces and
    complaints by their ID, the others by their content."""
    DeliverySettings.objects.create(workspace=acme, soft_bounce_limit=2)
    names = [
        "postmark_delivery.json",
        "postmark_open.json",
        "postmark_click.json",
        "postmark_bounce_soft.json",
        "postmark_spam_complaint.json",
        "postmark_bounce_hard.json",
        "postmark_subscription_change_bounce.json",
    ]
    for name in names:
        assert post_json(postmark, load(name)).status_code == 200
        before = (counts(acme), message_state(message))
        replay = post_json(postmark, load(name))
        assert replay.status_code == 200 and replay.json()["recorded"] == 0, name
        assert (counts(acme), message_state(message)) == before, name
