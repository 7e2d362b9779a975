"""The transactional API: POST /api/v1/messages queues one message (idempotently), GET
/api/v1/messages/<id> answers its status and events; scopes, errors and isolation."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audiences.models import Contact, Suppression, SuppressionReason, email_hash
from campaigns.delivery.sender import messages_send_due
from campaigns.models import EmailTemplate, Message, MessageClass
from esp.models import OutboxMessage, Workspace
from tests.conftest import key_client
from tests.factories import MessageEventFactory, api_key

MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Order {{ event.order_id }} for "
    "{{ contact.first_name|default:'you' }}: {{ event.total }} EUR</mj-text></mj-column></mj-section></mj-body></mjml>"
)


def receipt(workspace: Workspace, name: str = "Receipt", **fields: Any) -> EmailTemplate:
    values = {"subject": "Order {{ event.order_id }}", "mjml": MJML, "message_class": MessageClass.TRANSACTIONAL}
    return EmailTemplate.objects.create(workspace=workspace, name=name, **{**values, **fields})


def send(client: APIClient, **body: Any) -> Any:
    return client.post("/api/v1/messages", body, format="json")


@pytest.mark.django_db
def test_send_queues_a_message_and_the_same_key_returns_it(acme: Workspace, acme_api: APIClient) -> None:
    template = receipt(acme)
    body = {
        "template": template.pk,
        "contact": {"email": "New.Buyer@Example.com"},
        "data": {"order_id": "A-100", "total": 59.9},
        "idempotency_key": "order-A-100",
    }
    first = send(acme_api, **body)
    assert first.status_code == 202, first.content
    answer = first.json()
    assert answer["status"] == "queued" and answer["message_class"] == "transactional"
    assert answer["idempotency_key"] == "order-A-100" and answer["to_email"] == "New.Buyer@example.com"
    # The unknown address became a contact.
    buyer = Contact.objects.get(workspace=acme, email__iexact="new.buyer@example.com")
    assert answer["contact"] == buyer.pk

    again = send(acme_api, **{**body, "data": {"order_id": "CHANGED"}})
    assert again.status_code == 200 and again.json()["id"] == answer["id"]
    assert Message.objects.filter(workspace=acme).count() == 1
    assert Message.objects.get(pk=answer["id"]).data == {"event": {"order_id": "A-100", "total": 59.9}}

    messages_send_due()
    (stored,) = OutboxMessage.objects.filter(workspace=acme)
    assert stored.subject == "Order A-100" and "Order A-100 for you: 59.9 EUR" in stored.text_body

    status = acme_api.get(f"/api/v1/messages/{answer['id']}").json()
    assert status["status"] == "sent" and status["sent_at"] and status["subject"] == "Order A-100"
    assert status["events"] == []


@pytest.mark.django_db
def test_send_by_contact_id_and_marketing_class_from_the_template(acme: Workspace, acme_api: APIClient) -> None:
    person = Contact.objects.create(workspace=acme, email="known@example.com", first_name="Kim")
    promo = receipt(acme, name="Promo", message_class=MessageClass.MARKETING)
    response = send(acme_api, template=promo.pk, contact={"id": person.pk}, data={}, idempotency_key="k1")
    assert response.status_code == 202
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.contact_id, message.message_class, message.source) == (person.pk, "marketing", "tx:k1")


@pytest.mark.django_db
def test_suppressed_unknown_address_is_refused_at_send_time_not_made_a_contact(
    acme: Workspace, acme_api: APIClient
) -> None:
    Suppression.objects.create(workspace=acme, email_hash=email_hash("bounced@example.com"), reason="hard_bounce")
    Suppression.objects.create(
        workspace=acme, email_hash=email_hash("unsub@example.com"), reason=SuppressionReason.UNSUBSCRIBED
    )
    template = receipt(acme)
    bounced = send(acme_api, template=template.pk, contact={"email": "bounced@example.com"}, idempotency_key="b")
    unsub = send(acme_api, template=template.pk, contact={"email": "unsub@example.com"}, idempotency_key="u")
    assert bounced.status_code == unsub.status_code == 202
    assert not Contact.objects.filter(workspace=acme).exists()
    messages_send_due()
    assert Message.objects.get(pk=bounced.json()["id"]).state == "suppressed"
    # A receipt reaches an address that only unsubscribed from marketing.
    assert Message.objects.get(pk=unsub.json()["id"]).state == "sent"
    assert [m.to for m in OutboxMessage.objects.filter(workspace=acme)] == [["unsub@example.com"]]


@pytest.mark.django_db
def test_bad_requests_name_the_field(acme: Workspace, globex: Workspace, acme_api: APIClient) -> None:
    template = receipt(acme)
    theirs = receipt(globex)
    their_contact = Contact.objects.create(workspace=globex, email="g@globex.example")
    cases = [
        ({"template": 999999, "contact": {"email": "a@example.com"}, "idempotency_key": "1"}, "template"),
        ({"template": theirs.pk, "contact": {"email": "a@example.com"}, "idempotency_key": "1"}, "template"),
        ({"template": template.pk, "contact": {"id": their_contact.pk}, "idempotency_key": "1"}, "contact"),
        ({"template": template.pk, "contact": {"email": "not-an-address"}, "idempotency_key": "1"}, "contact.email"),
        ({"template": template.pk, "contact": {}, "idempotency_key": "1"}, "contact.non_field_errors"),
        ({"template": template.pk, "contact": {"email": "a@example.com", "id": 1}, "idempotency_key": "1"}, None),
        ({"template": template.pk, "contact": {"email": "a@example.com"}, "data": [1], "idempotency_key": "1"}, "data"),
        ({"template": template.pk, "contact": {"email": "a@example.com"}}, "idempotency_key"),
    ]
    for body, field in cases:
        response = acme_api.post("/api/v1/messages", body, format="json")
        assert response.status_code == 400, (body, response.content)
        error = response.json()["error"]
        assert error["code"] == "invalid"
        if field is not None:
            assert field in error["fields"], (body, error)
    assert not Message.objects.exists()
    assert not Contact.objects.filter(workspace=acme).exists()


@pytest.mark.django_db
def test_scopes(acme: Workspace) -> None:
    template = receipt(acme)
    reader = key_client(api_key(acme, scopes=["messages:read"]))
    denied = send(reader, template=template.pk, contact={"email": "a@example.com"}, idempotency_key="x")
    assert denied.status_code == 403
    sender = key_client(api_key(acme, scopes=["messages:send"]))
    made = send(sender, template=template.pk, contact={"email": "a@example.com"}, idempotency_key="x")
    assert made.status_code == 202
    assert sender.get(f"/api/v1/messages/{made.json()['id']}").status_code == 403
    assert reader.get(f"/api/v1/messages/{made.json()['id']}").status_code == 200


@pytest.mark.django_db
def test_status_shows_events_and_other_workspaces_are_404(
    acme: Workspace, globex: Workspace, acme_api: APIClient
) -> None:
    template = receipt(acme)
    made = send(acme_api, template=template.pk, contact={"email": "a@example.com"}, idempotency_key="e").json()
    messages_send_due()
    message = Message.objects.get(pk=made["id"])
    MessageEventFactory(message=message, type="delivered", url="")
    MessageEventFactory(message=message, type="clicked", url="https://shop.example/")
    detail = acme_api.get(f"/api/v1/messages/{message.pk}").json()
    assert [e["type"] for e in detail["events"]] == ["delivered", "clicked"]
    assert detail["events"][1]["url"] == "https://shop.example/"

    globex_api = key_client(api_key(globex))
    missing = globex_api.get(f"/api/v1/messages/{message.pk}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    # The same idempotency key in another workspace is another message.
    theirs = receipt(globex)
    other = send(globex_api, template=theirs.pk, contact={"email": "a@example.com"}, idempotency_key="e")
    assert other.status_code == 202 and other.json()["id"] != message.pk
