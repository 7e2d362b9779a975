"""Amazon SES events through SNS: basic auth (required), Amazon's SNS signature (verified with a
certificate the test makes and signs with — fetching Amazon's real one needs the network, so the
fetch is replaced, never the verification), bounces, complaints, deliveries, replays."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.test import Client

from audiences.models import Event, Suppression, email_hash
from campaigns.models import DeliverySettings, MessageEvent
from campaigns.webhooks import sns
from tests.campaigns.payloads import (
    BASIC_AUTH,
    SES_MESSAGE_ID,
    basic_auth,
    counts,
    load,
    make_message,
    make_provider,
    message_state,
    url,
)

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-6aad65c2f9911b05cd53efda11f913f9.pem"
UTC = dt.UTC


@pytest.fixture(scope="module")
def amazon_key() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch, amazon_key: Any) -> list[str]:
    """Stands in for the https fetch of Amazon's certificate; records what was fetched."""
    urls: list[str] = []

    def certificate(cert_url: str) -> x509.Certificate:
        urls.append(cert_url)
        assert cert_url == CERT_URL
        return amazon_key[1]

    monkeypatch.setattr(sns, "signing_certificate", certificate)
    return urls


def sign(envelope: dict[str, Any], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """Sign as SNS does (signature version 1: SHA1withRSA over the documented string)."""
    if envelope["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{k}\n{envelope[k]}\n" for k in keys if k in envelope)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 -- SNS v1
    return {**envelope, "Signature": base64.b64encode(signature).decode()}


def post(provider: Any, envelope: dict[str, Any], *, auth: str | None = BASIC_AUTH) -> Any:
    # SNS posts its JSON as text/plain with the type and id repeated in headers.
    return Client().post(
        url(provider),
        data=json.dumps(envelope),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=envelope["Type"],
        HTTP_X_AMZ_SNS_MESSAGE_ID=envelope["MessageId"],
        **(basic_auth(auth) if auth else {}),
    )


def with_message_id(envelope: dict[str, Any], sns_id: str, ses_id: str) -> dict[str, Any]:
    inner = json.loads(envelope["Message"])
    inner["mail"]["messageId"] = ses_id
    return {**envelope, "MessageId": sns_id, "Message": json.dumps(inner)}


@pytest.fixture
def ses(acme: Any) -> Any:
    return make_provider(acme, "amazon_ses", webhook_secret=BASIC_AUTH, region_name="eu-west-1")


@pytest.mark.django_db
def test_permanent_bounce_suppresses_and_a_replay_counts_once(acme, ses, amazon_key, fetched):
    message = make_message(acme, provider=ses, provider_message_id=SES_MESSAGE_ID)
    envelope = sign(load("ses_bounce_permanent.json"), amazon_key[0])

    response = post(ses, envelope)
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 1, "recorded": 1, "replayed": 0, "unknown": 0, "ignored": 0}
    assert fetched == [CERT_URL]
    state = message_state(message)
    assert state["delivery_status"] == "bounced"
    # The bounce's own time (bounce.timestamp), not the SNS notification's.
    assert state["bounced_at"] == dt.datetime(2026, 3, 2, 9, 0, 2, 511000, tzinfo=UTC)
    event = MessageEvent.objects.get(message=message)
    assert event.type == "bounced"
    # SES's own ids (the message's and the bounce's feedback id), not the SNS notification's.
    assert event.event_key == (
        "amazon_ses:0102018e0a1b2c3d-5f6e7d8c-1a2b-4c3d-9e8f-0a1b2c3d4e5f-000000"
        ":0102018e0a1b2d10-aa11bb22-cc33-dd44-ee55-ff6677889900-000000"
    )
    assert event.details["mta_response"] == "smtp; 550 5.1.1 <jane@example.com>... User unknown"
    assert event.details["esp_event"]["bounce"]["bounceSubType"] == "General"
    stored = Event.objects.get(workspace=acme)
    assert (stored.name, stored.contact_id) == ("Email Bounced", message.contact_id)
    assert stored.properties["bounce_type"] == "hard"
    suppression = Suppression.objects.get(workspace=acme)
    assert (suppression.email_hash, suppression.reason) == (email_hash("jane@example.com"), "hard_bounce")

    before = counts(acme)
    assert before == {"message_events": 1, "events": 1, "pending": 1, "suppressions": 1}
    again = post(ses, envelope)
    assert again.status_code == 200
    assert again.json()["replayed"] == 1
    assert counts(acme) == before
    assert message_state(message) == state


@pytest.mark.django_db
def test_complaint_suppresses(acme, ses, amazon_key, fetched):
    message = make_message(acme, provider=ses, provider_message_id=SES_MESSAGE_ID)
    assert post(ses, sign(load("ses_complaint.json"), amazon_key[0])).status_code == 200
    state = message_state(message)
    assert state["delivery_status"] == "complained"
    assert state["complained_at"] == dt.datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    assert Suppression.objects.get(workspace=acme).reason == "complaint"
    assert Event.objects.get(workspace=acme).name == "Email Complained"


@pytest.mark.django_db
def test_transient_bounces_suppress_after_the_limit(acme, ses, amazon_key, fetched):
    DeliverySettings.objects.create(workspace=acme, soft_bounce_limit=2)
    first = make_message(acme, provider=ses, provider_message_id=SES_MESSAGE_ID, source="broadcast:1")
    second = make_message(acme, provider=ses, provider_message_id="ses-second", source="broadcast:2")
    third = make_message(acme, provider=ses, provider_message_id="ses-third", source="broadcast:3")
    transient = load("ses_bounce_transient.json")

    # Delivered first (SES notification of the delivery), then two messages bounce softly.
    assert post(ses, sign(load("ses_delivery.json"), amazon_key[0])).status_code == 200
    assert message_state(first)["delivery_status"] == "delivered"
    assert message_state(first)["delivered_at"] == dt.datetime(2026, 3, 2, 9, 0, 1, 750000, tzinfo=UTC)

    post(ses, sign(with_message_id(transient, "sns-2", "ses-second"), amazon_key[0]))
    state = message_state(second)
    assert (state["delivery_status"], state["bounced_at"]) == ("soft_bounced", None)
    assert not Suppression.objects.filter(workspace=acme).exists()
    assert Event.objects.get(workspace=acme, name="Email Bounced").properties["bounce_type"] == "soft"

    post(ses, sign(with_message_id(transient, "sns-3", "ses-third"), amazon_key[0]))
    assert message_state(third)["delivery_status"] == "soft_bounced"
    suppression = Suppression.objects.get(workspace=acme)
    assert suppression.reason == "soft_bounces"
    assert str(third.pk) in suppression.note


@pytest.mark.django_db
def test_basic_auth_is_required_and_checked(acme, ses, amazon_key, fetched):
    message = make_message(acme, provider=ses, provider_message_id=SES_MESSAGE_ID)
    envelope = sign(load("ses_bounce_permanent.json"), amazon_key[0])
    before = counts(acme)

    # No credentials: SNS sends them only after a 401 challenge.
    challenged = post(ses, envelope, auth=None)
    assert challenged.status_code == 401
    assert challenged["WWW-Authenticate"].startswith("Basic ")
    wrong = post(ses, envelope, auth="esp-hooks:guess")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "rejected"
    assert fetched == []  # no certificate fetched for an unauthenticated request
    assert counts(acme) == before
    assert message_state(message)["delivery_status"] == ""

    # A provider without a basic-auth secret takes no SES webhooks at all.
    bare = make_provider(acme, "amazon_ses", region_name="eu-west-1")
    assert post(bare, envelope).status_code == 403


@pytest.mark.django_db
def test_bad_signatures_are_rejected(acme, ses, amazon_key, fetched):
    message = make_message(acme, provider=ses, provider_message_id=SES_MESSAGE_ID)
    signed = sign(load("ses_bounce_permanent.json"), amazon_key[0])
    before = counts(acme)

    # Message altered after signing (a forged bounce for someone else's mail).
    forged = with_message_id(signed, signed["MessageId"], SES_MESSAGE_ID)
    forged["Message"] = forged["Message"].replace("Permanent", "Transient")
    assert post(ses, forged).status_code == 400
    # Signed by someone else's key.
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert post(ses, sign(load("ses_bounce_permanent.json"), other_key)).status_code == 400
    # A certificate URL that is not Amazon's is never fetched.
    elsewhere = {**signed, "SigningCertURL": "https://attacker.example/sns.pem"}
    assert post(ses, elsewhere).status_code == 400
    assert fetched == [CERT_URL, CERT_URL]
    assert counts(acme) == before
    assert message_state(message)["bounced_at"] is None


@pytest.mark.django_db
def test_subscription_is_confirmed_by_visiting_subscribe_url(acme, ses, amazon_key, fetched, monkeypatch):
    visited: list[str] = []

    class Answer:
        status_code = 200

        def raise_for_status(self) -> None:
            return None

    def get(address: str, **kwargs: Any) -> Answer:
        visited.append(address)
        return Answer()

    monkeypatch.setattr(sns.requests, "get", get)
    confirmation = sign(load("ses_subscription_confirmation.json"), amazon_key[0])
    assert post(ses, confirmation, auth=None).status_code == 401  # only with the secret
    assert visited == []
    assert post(ses, confirmation).status_code == 200
    assert visited == [confirmation["SubscribeURL"]]
    assert counts(acme) == {"message_events": 0, "events": 0, "pending": 0, "suppressions": 0}


def test_only_amazon_urls_pass():
    assert sns.is_amazon_url(CERT_URL, path_suffix=".pem")
    assert sns.is_amazon_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem", path_suffix=".pem")
    for bad in (
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com.attacker.example/x.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
        "https://user@sns.eu-west-1.amazonaws.com/x.pem",
        "https://s3.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com/x.txt",
    ):
        assert not sns.is_amazon_url(bad, path_suffix=".pem"), bad


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["ses_delivery.json", "ses_bounce_transient.json", "ses_bounce_permanent.json", "ses_complaint.json"]
)
def test_a_replayed_event_changes_nothing_the_second_time(acme, ses, amazon_key, fetched, name):
    """The same notification again (SNS retries), and the same bounce or complaint in another
    notification (another topic, a re-publish: a new SNS id, SES's feedback id the same)."""
    DeliverySettings.objects.create(workspace=acme, soft_bounce_limit=2)
    envelope = load(name)
    ses_id = json.loads(envelope["Message"])["mail"]["messageId"]
    message = make_message(acme, provider=ses, provider_message_id=ses_id)
    assert post(ses, sign(envelope, amazon_key[0])).json()["recorded"] == 1
    before = (counts(acme), message_state(message))
    assert post(ses, sign(envelope, amazon_key[0])).json()["replayed"] == 1
    assert (counts(acme), message_state(message)) == before
    if "bounce" in name or "complaint" in name:
        again = with_message_id(envelope, "sns-another-notification", ses_id)
        assert post(ses, sign(again, amazon_key[0])).json()["replayed"] == 1
        assert (counts(acme), message_state(message)) == before
