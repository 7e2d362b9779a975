"""GDPR: a contact's export holds everything about them; an erasure leaves no personal data,
only the suppression's hash, so the person is never mailed again."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from rest_framework.test import APIClient

from audiences import gdpr
from audiences.models import ConsentRecord, Contact, CustomField, Subscription, Suppression, SuppressionReason
from audiences.services import (
    ConsentContext,
    contact_save,
    list_save,
    subscription_subscribe,
    subscription_unsubscribe,
    suppression_add,
)
from esp.models import OutboxMessage, Workspace
from tests.esp.test_api_keys import _tables_containing
from tests.factories import OutboxMessageFactory

ADDRESS = "erase.me@example.com"
LOCAL_PART = "erase.me"


@pytest.fixture
def person(acme: Workspace, run_tasks_now: None, django_capture_on_commit_callbacks: Callable) -> Contact:
    """A contact with typed attributes, two subscriptions (one confirmation mail sent), an
    unsubscribe, consent records and a mention in another mail."""
    CustomField.objects.create(workspace=acme, key="favourite", label="Favourite colour")
    contact, _ = contact_save(
        workspace=acme,
        data={"email": "Erase.Me@Example.com", "first_name": "Eve", "phone": "+359 888", "favourite": "teal"},
    )
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": True})
    deals = list_save(workspace=acme, data={"name": "Deals", "double_opt_in": False})
    context = ConsentContext(source="api", ip_address="203.0.113.9", user_agent="Mozilla", text_shown="Yes")
    with django_capture_on_commit_callbacks(execute=True):
        subscription_subscribe(workspace=acme, contact=contact, mailing_list=news, context=context)
    subscription_subscribe(workspace=acme, contact=contact, mailing_list=deals, context=context)
    subscription_unsubscribe(workspace=acme, contact=contact, mailing_list=deals, context=context)
    OutboxMessageFactory(workspace=acme, to=["team@shop.test"], text_body=f"New subscriber: {ADDRESS}")
    return contact


@pytest.mark.django_db
def test_export_holds_the_contact_subscriptions_and_consent(acme_api: APIClient, person: Contact) -> None:
    response = acme_api.get(f"/api/v1/contacts/{person.pk}/export")
    assert response.status_code == 200
    export = response.json()
    assert export["workspace"] == "Acme"
    assert export["contact"]["email"] == "Erase.Me@example.com"
    assert export["contact"]["attributes"] == {"favourite": "teal"} and export["contact"]["phone"] == "+359 888"
    assert sorted((s["list_name"], s["status"]) for s in export["subscriptions"]) == [
        ("Deals", "unsubscribed"),
        ("News", "pending"),
    ]
    actions = [(r["action"], r["source"], r["ip_address"]) for r in export["consent_records"]]
    assert actions == [
        ("subscribed", "api", "203.0.113.9"),
        ("subscribed", "api", "203.0.113.9"),
        ("unsubscribed", "api", "203.0.113.9"),
    ]
    assert export["suppression"] is None
    assert len(export["messages"]) == 2  # the confirmation mail and the mention


@pytest.fixture
def extra_exporter() -> Iterator[None]:
    def orders(contact: Contact) -> dict[str, object]:
        return {"orders": [{"contact": contact.pk, "total": "9.90"}]}

    gdpr.CONTACT_EXPORTERS.append(orders)
    yield
    gdpr.CONTACT_EXPORTERS.remove(orders)


@pytest.mark.django_db
def test_later_apps_extend_the_export(acme: Workspace, person: Contact, extra_exporter: None) -> None:
    export = gdpr.contact_export(workspace=acme, contact_id=person.pk)
    assert export["orders"] == [{"contact": person.pk, "total": "9.90"}]


@pytest.mark.django_db
def test_erase_leaves_no_personal_data(acme_api: APIClient, acme: Workspace, person: Contact) -> None:
    # Before: the address (as written) is on the contact and in the outbox, the IP on consent.
    assert {"audiences_contact", "esp_outboxmessage"} <= set(_tables_containing("Erase.Me"))
    assert _tables_containing("203.0.113.9") == ["audiences_consentrecord"]
    suppression_add(workspace=acme, email=ADDRESS, reason=SuppressionReason.COMPLAINT, note=f"{ADDRESS} phoned")

    response = acme_api.post(f"/api/v1/contacts/{person.pk}/erase")
    assert response.status_code == 204

    for trace in (LOCAL_PART, "Erase.Me", "+359 888", "teal", "203.0.113.9"):
        assert _tables_containing(trace) == [], trace
    assert not Contact.objects.exists()
    assert not Subscription.objects.exists() and not ConsentRecord.objects.exists()
    assert OutboxMessage.objects.count() == 0
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.note, suppression.reason) == ("", "", SuppressionReason.ERASED)
    # The hash still stops the address from coming back.
    again = acme_api.post("/api/v1/contacts", {"email": ADDRESS}, format="json")
    assert again.status_code == 400 and "email" in again.json()["error"]["fields"]
    assert acme_api.get(f"/api/v1/suppressions?email={ADDRESS}").json()["results"][0]["id"] == suppression.pk


@pytest.mark.django_db
def test_erase_adds_a_hash_only_suppression(acme: Workspace, person: Contact) -> None:
    gdpr.contact_erase(workspace=acme, contact_id=person.pk)
    suppression = Suppression.objects.get()
    assert suppression.email == "" and suppression.reason == SuppressionReason.ERASED
    assert _tables_containing(LOCAL_PART) == []


@pytest.mark.django_db
def test_erase_touches_no_other_workspace(
    acme_api: APIClient, acme: Workspace, globex: Workspace, person: Contact
) -> None:
    theirs, _ = contact_save(workspace=globex, data={"email": ADDRESS})
    suppression_add(workspace=globex, email=ADDRESS, reason=SuppressionReason.MANUAL)
    OutboxMessageFactory(workspace=globex, to=[ADDRESS])
    assert acme_api.post(f"/api/v1/contacts/{theirs.pk}/erase").status_code == 404
    assert acme_api.get(f"/api/v1/contacts/{theirs.pk}/export").status_code == 404
    assert acme_api.post(f"/api/v1/contacts/{person.pk}/erase").status_code == 204
    assert Contact.objects.get().pk == theirs.pk
    assert Suppression.objects.get(workspace=globex).email == ADDRESS
    assert OutboxMessage.objects.filter(workspace=globex).count() == 1


@pytest.mark.django_db
def test_erasers_run_before_the_contact_goes(acme: Workspace, person: Contact) -> None:
    seen: list[str] = []

    def eraser(contact: Contact) -> None:
        seen.append(contact.email)

    gdpr.CONTACT_ERASERS.append(eraser)
    try:
        gdpr.contact_erase(workspace=acme, contact_id=person.pk)
    finally:
        gdpr.CONTACT_ERASERS.remove(eraser)
    assert seen == ["Erase.Me@example.com"]


@pytest.mark.django_db
def test_export_needs_read_and_erase_needs_write(acme: Workspace, person: Contact) -> None:
    from tests.conftest import key_client
    from tests.factories import api_key

    reader = key_client(api_key(acme, scopes=["contacts:read"]))
    assert reader.get(f"/api/v1/contacts/{person.pk}/export").status_code == 200
    assert reader.post(f"/api/v1/contacts/{person.pk}/erase").status_code == 403
    outsider = key_client(api_key(acme, scopes=["events:write"]))
    assert outsider.get(f"/api/v1/contacts/{person.pk}/export").status_code == 403
    assert Contact.objects.filter(pk=person.pk).exists()
