"""The webhook endpoint itself: routing by provider token, workspace isolation, messages named
by our own metadata id, machine opens, and the other ESPs' hard/soft bounce rules and
signatures (SendGrid, SparkPost, Brevo, Mailjet, Resend)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.test import Client

from audiences.models import Event, Suppression
from campaigns.models import MessageEvent
from tests.campaigns.payloads import (
    BASIC_AUTH,
    POSTMARK_MESSAGE_ID,
    counts,
    load,
    make_message,
    make_provider,
    message_state,
    post_json,
    url,
)

UTC = dt.UTC
EMPTY = {"message_events": 0, "events": 0, "pending": 0, "suppressions": 0}


@pytest.mark.django_db
def test_unknown_token_wrong_kind_and_non_esp_kinds_are_404(acme):
    postmark = make_provider(acme, "postmark", webhook_secret=BASIC_AUTH)
    client = Client()
    unknown = client.post(
        "/webhooks/0123456789abcdef0123456789abcdef/postmark/tracking/", data="{}", content_type="application/json"
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert client.post(url(postmark, "mailgun"), data="{}", content_type="application/json").status_code == 404
    smtp = make_provider(acme, "smtp", host="smtp.example.com")
    assert client.post(url(smtp), data="{}", content_type="application/json").status_code == 404
    # Only POST (and the HEAD some ESPs probe with) is answered.
    assert client.get(url(postmark), **{"HTTP_AUTHORIZATION": "x"}).status_code == 405


@pytest.mark.django_db
def test_another_workspaces_provider_cannot_touch_this_workspaces_mail(acme, globex):
    ours = make_provider(acme, "postmark", webhook_secret=BASIC_AUTH)
    theirs = make_provider(globex, "postmark", webhook_secret="globex:their-own")
    message = make_message(acme, provider=ours, provider_message_id=POSTMARK_MESSAGE_ID)
    state = message_state(message)

    # Globex's (valid) webhook names acme's provider message id, and acme's own id in metadata.
    payload = {**load("postmark_bounce_hard.json"), "Metadata": {"esp_message_id": str(message.pk)}}
    response = post_json(theirs, payload, auth="globex:their-own")
    assert response.status_code == 200
    assert response.json()["unknown"] == 1
    assert message_state(message) == state
    assert counts(acme) == EMPTY
    assert counts(globex) == EMPTY
    # Acme's secret on globex's URL is no key either.
    assert post_json(theirs, payload, auth=BASIC_AUTH).status_code == 400


@pytest.mark.django_db
def test_a_message_is_found_by_our_id_in_metadata(acme):
    postmark = make_provider(acme, "postmark", webhook_secret=BASIC_AUTH)
    # Sent, but the provider's id was never recorded (a crash right after the hand-over).
    message = make_message(acme, provider=postmark, provider_message_id="")
    payload = {**load("postmark_delivery.json"), "Metadata": {"esp_message_id": str(message.pk)}}
    assert post_json(postmark, payload).json()["recorded"] == 1
    assert message_state(message)["delivery_status"] == "delivered"


@pytest.mark.django_db
def test_test_messages_record_delivery_but_no_engagement(acme):
    postmark = make_provider(acme, "postmark", webhook_secret=BASIC_AUTH)
    message = make_message(acme, provider=postmark, provider_message_id=POSTMARK_MESSAGE_ID, source="test:abc")
    post_json(postmark, load("postmark_delivery.json"))
    assert post_json(postmark, load("postmark_open.json")).json()["ignored"] == 1
    state = message_state(message)
    assert (state["delivery_status"], state["opened_at"]) == ("delivered", None)
    assert not Event.objects.filter(workspace=acme).exists()


@pytest.mark.django_db
def test_sendgrid_machine_open_and_blocked_bounce(acme):
    sendgrid = make_provider(acme, "sendgrid", api_key="SG.x", webhook_secret=BASIC_AUTH)
    message = make_message(acme, provider=sendgrid, provider_message_id="<sg-1@acme.example>")
    response = post_json(sendgrid, load("sendgrid_events.json"))
    assert response.json()["recorded"] == 2
    state = message_state(message)
    assert state["delivered_at"] == dt.datetime.fromtimestamp(1772442001, tz=UTC)
    assert state["opened_at"] is None  # Apple Mail Privacy Protection fetched the pixel
    opened = MessageEvent.objects.get(message=message, type="opened")
    assert opened.is_machine is True
    assert opened.event_key == "sendgrid:b3BlbmVkLTAtMjQ5OTI2NjItMTAwMA"
    assert Event.objects.get(workspace=acme, name="Email Opened").properties["is_machine"] is True

    post_json(sendgrid, load("sendgrid_bounce_blocked.json"))
    assert message_state(message)["delivery_status"] == "delivered"  # a later soft bounce does not undo it
    assert MessageEvent.objects.get(message=message, event_key__endswith="Ym91bmNlLTAtMjQ5OTI2NjItMTAwMA").type == (
        "soft_bounced"
    )
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_sparkpost_invalid_recipient_is_hard(acme):
    sparkpost = make_provider(acme, "sparkpost", api_key="sp", webhook_secret=BASIC_AUTH)
    message = make_message(acme, provider=sparkpost, provider_message_id="65832150921904138")
    assert post_json(sparkpost, load("sparkpost_bounce.json")).json()["recorded"] == 1
    assert message_state(message)["bounced_at"] == dt.datetime.fromtimestamp(1772442002, tz=UTC)
    assert Suppression.objects.get(workspace=acme).reason == "hard_bounce"
    # Bounce class 22 (mailbox full) is soft.
    other = make_message(acme, provider=sparkpost, provider_message_id="t-22", source="broadcast:2")
    full = load("sparkpost_bounce.json")
    full[0]["msys"]["message_event"].update(bounce_class="22", event_id="e-22", transmission_id="t-22")
    post_json(sparkpost, full)
    assert message_state(other)["delivery_status"] == "soft_bounced"


@pytest.mark.django_db
def test_brevo_soft_bounce_and_proxy_open(acme):
    brevo = make_provider(acme, "brevo", api_key="xkeysib", webhook_secret=BASIC_AUTH)
    message = make_message(acme, provider=brevo, provider_message_id="<202603020900.12345678901@smtp-relay.mailin.fr>")
    post_json(brevo, load("brevo_soft_bounce.json"))
    post_json(brevo, load("brevo_proxy_open.json"))
    state = message_state(message)
    assert (state["delivery_status"], state["opened_at"]) == ("soft_bounced", None)
    assert MessageEvent.objects.get(message=message, type="opened").is_machine is True
    # Brevo gives no event ids: the content is the key, so the same post again is a replay.
    assert post_json(brevo, load("brevo_soft_bounce.json")).json()["replayed"] == 1


@pytest.mark.django_db
def test_mailjet_hard_bounce(acme):
    mailjet = make_provider(acme, "mailjet", api_key="mj", secret_key="mjs", webhook_secret=BASIC_AUTH)
    message = make_message(acme, provider=mailjet, provider_message_id="19421777835146490")
    post_json(mailjet, load("mailjet_bounce.json"))
    assert message_state(message)["delivery_status"] == "bounced"
    soft = make_message(acme, provider=mailjet, provider_message_id="19421777835146491", source="broadcast:2")
    post_json(mailjet, {**load("mailjet_bounce.json"), "MessageID": 19421777835146491, "hard_bounce": False})
    assert message_state(soft)["delivery_status"] == "soft_bounced"
    assert Suppression.objects.get(workspace=acme).reason == "hard_bounce"


RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-signing-secret-32-bytes!!").decode()


def resend_post(provider: Any, payload: dict[str, Any], *, secret: str = RESEND_SECRET, at: int | None = None) -> Any:
    body = json.dumps(payload).encode()
    svix_id, timestamp = "msg_2Lh9KRb0pzN4LePd3XiA4v", str(at or int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(key, f"{svix_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    return Client().post(
        url(provider),
        data=body,
        content_type="application/json",
        HTTP_SVIX_ID=svix_id,
        HTTP_SVIX_TIMESTAMP=timestamp,
        HTTP_SVIX_SIGNATURE=f"v1,{signature.decode()}",
    )


@pytest.mark.django_db
def test_resend_svix_signature(acme):
    resend = make_provider(acme, "resend", api_key="re_x", signing_secret=RESEND_SECRET)
    message = make_message(acme, provider=resend, provider_message_id="56761188-7520-42d8-8898-ff6fc54ce618")
    other_secret = "whsec_" + base64.b64encode(b"someone-elses-secret-32-bytes!!!").decode()
    assert resend_post(resend, load("resend_bounced.json"), secret=other_secret).status_code == 400
    assert resend_post(resend, load("resend_bounced.json"), at=int(time.time()) - 3600).status_code == 400
    assert counts(acme) == EMPTY

    response = resend_post(resend, load("resend_bounced.json"))
    assert response.status_code == 200, response.content
    assert MessageEvent.objects.get(message=message).event_key == "resend:msg_2Lh9KRb0pzN4LePd3XiA4v"
    assert message_state(message)["bounced_at"] == dt.datetime(2026, 3, 2, 9, 0, 2, tzinfo=UTC)
    assert Suppression.objects.get(workspace=acme).reason == "hard_bounce"
    assert resend_post(resend, load("resend_bounced.json")).json()["replayed"] == 1
