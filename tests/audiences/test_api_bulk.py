"""The bulk upsert endpoint: each item judged on its own, the valid ones written in one pass."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audiences.models import ConsentRecord, Contact, CustomField, FieldType, Subscription, SuppressionReason
from audiences.services import contact_save, list_save, suppression_add
from esp.models import Workspace


@pytest.mark.django_db
def test_good_and_bad_items_get_exact_statuses(acme_api: APIClient, acme: Workspace) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    old, _ = contact_save(workspace=acme, data={"email": "old@example.com", "city": "Sofia"})
    contact_save(workspace=acme, data={"email": "owner@example.com", "external_id": "u-1"})
    suppression_add(workspace=acme, email="blocked@example.com", reason=SuppressionReason.HARD_BOUNCE)
    items = [
        {"email": "new@example.com", "orders": "3"},  # 0 created
        {"email": "OLD@example.com", "last_name": "Timer"},  # 1 updated
        {"email": "not-an-address"},  # 2 rejected: email
        {"email": "typed@example.com", "attributes": {"orders": "many"}},  # 3 rejected: attributes.orders
        {"email": "blocked@example.com"},  # 4 rejected: suppressed
        {"email": "thief@example.com", "external_id": "u-1"},  # 5 rejected: external_id of another
        "not an object",  # 6 rejected
        {"email": "second@example.com", "gender": "x", "country": "Bulgaria"},  # 7 rejected: two fields
    ]
    response = acme_api.post("/api/v1/contacts/bulk", {"contacts": items}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [
        "created", "updated", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected",
    ]  # fmt: skip
    assert {k: body[k] for k in ("created", "updated", "unchanged", "rejected")} == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "rejected": 6,
    }
    new = Contact.objects.get(email="new@example.com")
    assert results[0]["id"] == new.pk and new.attributes == {"orders": 3} and new.source == "api"
    assert results[1]["id"] == old.pk and results[1]["errors"] == {}
    old.refresh_from_db()
    assert old.last_name == "Timer" and old.city == "Sofia"  # fields the item did not give are kept
    assert list(results[2]["errors"]) == ["email"] and results[2]["id"] is None
    assert list(results[3]["errors"]) == ["attributes.orders"]
    assert "suppression" in results[4]["errors"]["email"][0]
    assert list(results[5]["errors"]) == ["external_id"]
    assert list(results[6]["errors"]) == ["non_field_errors"]
    assert set(results[7]["errors"]) == {"gender", "country"}
    assert Contact.objects.filter(workspace=acme).count() == 3


@pytest.mark.django_db
def test_update_existing_false_leaves_them_unchanged(acme_api: APIClient, acme: Workspace) -> None:
    contact_save(workspace=acme, data={"email": "old@example.com", "first_name": "Old"})
    response = acme_api.post(
        "/api/v1/contacts/bulk",
        {"contacts": [{"email": "old@example.com", "first_name": "New"}], "update_existing": False},
        format="json",
    )
    assert [r["status"] for r in response.json()["results"]] == ["unchanged"]
    assert Contact.objects.get().first_name == "Old"


@pytest.mark.django_db
def test_valid_items_are_written_in_one_upsert(acme_api: APIClient, acme: Workspace) -> None:
    items = [{"email": f"c{n}@example.com", "first_name": f"C{n}"} for n in range(300)]
    with CaptureQueriesContext(connection) as queries:
        response = acme_api.post("/api/v1/contacts/bulk", {"contacts": items}, format="json")
    assert response.json()["created"] == 300
    inserts = [q for q in queries.captured_queries if "INSERT INTO audiences_contact" in q["sql"]]
    assert len(inserts) == 1
    assert len(queries.captured_queries) < 30  # no query per item


@pytest.mark.django_db
def test_with_a_list_the_written_contacts_are_subscribed(acme_api: APIClient, acme: Workspace) -> None:
    news = list_save(workspace=acme, data={"name": "News"})
    response = acme_api.post(
        "/api/v1/contacts/bulk",
        {"contacts": [{"email": "a@example.com"}, {"email": "bad"}], "list": news.pk, "consent_text": "Yes please"},
        format="json",
    )
    assert [r["status"] for r in response.json()["results"]] == ["created", "rejected"]
    subscription = Subscription.objects.get()
    assert subscription.mailing_list == news and subscription.contact.email == "a@example.com"
    record = ConsentRecord.objects.get()
    assert record.source == "api" and record.text_shown == "Yes please"


@pytest.mark.django_db
def test_a_list_of_another_workspace_is_a_field_error(acme_api: APIClient, globex: Workspace) -> None:
    theirs = list_save(workspace=globex, data={"name": "Theirs"})
    response = acme_api.post(
        "/api/v1/contacts/bulk", {"contacts": [{"email": "a@example.com"}], "list": theirs.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"list": ["No such list."]}
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_over_1000_items_is_400_naming_the_field(acme_api: APIClient) -> None:
    items = [{"email": f"c{n}@example.com"} for n in range(1001)]
    response = acme_api.post("/api/v1/contacts/bulk", {"contacts": items}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["contacts"]
    assert "1000" in response.json()["error"]["fields"]["contacts"][0]
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_exactly_1000_items_is_accepted(acme_api: APIClient) -> None:
    items = [{"email": f"c{n}@example.com"} for n in range(1000)]
    response = acme_api.post("/api/v1/contacts/bulk", {"contacts": items}, format="json")
    assert response.status_code == 200 and response.json()["created"] == 1000


@pytest.mark.django_db
def test_a_missing_envelope_is_400(acme_api: APIClient) -> None:
    response = acme_api.post("/api/v1/contacts/bulk", [{"email": "a@example.com"}], format="json")
    assert response.status_code == 400
    response = acme_api.post("/api/v1/contacts/bulk", {}, format="json")
    assert response.status_code == 400 and "contacts" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_bulk_into_a_double_opt_in_list_asks_each_new_subscriber_to_confirm(
    acme_api: APIClient, acme: Workspace, run_tasks_now: None, django_capture_on_commit_callbacks
) -> None:
    from esp.models import OutboxMessage

    weekly = list_save(workspace=acme, data={"name": "Weekly", "double_opt_in": True})
    shop = list_save(workspace=acme, data={"name": "Orders", "double_opt_in": False})
    items = [{"email": "a@example.com"}, {"email": "b@example.com"}]
    with django_capture_on_commit_callbacks(execute=True):
        acme_api.post("/api/v1/contacts/bulk", {"contacts": items, "list": weekly.pk}, format="json")
        acme_api.post("/api/v1/contacts/bulk", {"contacts": items, "list": shop.pk}, format="json")
    statuses = dict(Subscription.objects.values_list("mailing_list__name", "status").distinct())
    assert statuses == {"Weekly": "pending", "Orders": "subscribed"}
    confirmations = OutboxMessage.objects.filter(workspace=acme, subject__contains="Weekly")
    assert sorted(m.to[0] for m in confirmations) == ["a@example.com", "b@example.com"]
    assert not OutboxMessage.objects.filter(subject__contains="Orders").exists()
