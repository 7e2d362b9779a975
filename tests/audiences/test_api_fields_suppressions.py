"""The custom fields and suppressions API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audiences.models import Contact, CustomField, Suppression, SuppressionReason, email_hash
from audiences.services import contact_save, suppression_add
from esp.models import Role, Workspace
from tests.conftest import key_client, logged_in
from tests.factories import api_key, member

# --- custom fields --------------------------------------------------------------------------


@pytest.mark.django_db
def test_custom_field_round_trip(acme_api: APIClient) -> None:
    created = acme_api.post(
        "/api/v1/custom-fields",
        {"key": "income_band", "label": "Income band", "type": "choice", "choices": ["low", "high"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["key"], body["type"], body["choices"]) == ("income_band", "choice", ["low", "high"])
    url = f"/api/v1/custom-fields/{body['id']}"
    assert acme_api.get(url).json() == body
    changed = acme_api.patch(url, {"label": "Band", "choices": ["low", "mid", "high"]}, format="json")
    assert changed.status_code == 200 and changed.json()["choices"] == ["low", "mid", "high"]
    assert [row["key"] for row in acme_api.get("/api/v1/custom-fields").json()["results"]] == ["income_band"]
    assert acme_api.delete(url).status_code == 204
    assert acme_api.get(url).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"key": "band", "type": "choice"}, "choices"),
        ({"key": "band", "type": "colour"}, "type"),
        ({"key": "Income Band", "type": "text"}, "key"),
        ({"key": "email", "type": "text"}, "key"),
        ({"type": "text"}, "key"),
    ],
)
def test_invalid_custom_fields_are_400(acme_api: APIClient, payload: dict, field: str) -> None:
    response = acme_api.post("/api/v1/custom-fields", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not CustomField.objects.exists()


@pytest.mark.django_db
def test_custom_field_keys_are_unique_per_workspace(acme_api: APIClient, acme: Workspace, globex: Workspace) -> None:
    CustomField.objects.create(workspace=globex, key="orders", label="Orders")
    assert acme_api.post("/api/v1/custom-fields", {"key": "orders", "type": "number"}, format="json").status_code == 201
    again = acme_api.post("/api/v1/custom-fields", {"key": "orders", "type": "text"}, format="json")
    assert again.status_code == 400 and "key" in again.json()["error"]["fields"]


@pytest.mark.django_db
def test_key_and_type_are_fixed_once_created(acme_api: APIClient, acme: Workspace) -> None:
    field = CustomField.objects.create(workspace=acme, key="orders", label="Orders", type="number")
    response = acme_api.patch(f"/api/v1/custom-fields/{field.pk}", {"key": "purchases", "type": "text"}, format="json")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"key", "type"}


@pytest.mark.django_db
def test_deleting_a_field_keeps_or_purges_values(acme_api: APIClient, acme: Workspace) -> None:
    for key in ("orders", "shoe"):
        CustomField.objects.create(workspace=acme, key=key, label=key, type="number")
    contact, _ = contact_save(workspace=acme, data={"email": "a@example.com", "orders": 2, "shoe": 42})
    orders, shoe = CustomField.objects.order_by("key")
    assert acme_api.delete(f"/api/v1/custom-fields/{orders.pk}").status_code == 204
    assert acme_api.delete(f"/api/v1/custom-fields/{shoe.pk}?purge_values=true").status_code == 204
    contact.refresh_from_db()
    assert contact.attributes == {"orders": 2}


@pytest.mark.django_db
def test_custom_fields_of_another_workspace_are_404(acme_api: APIClient, globex: Workspace) -> None:
    theirs = CustomField.objects.create(workspace=globex, key="orders", label="Orders")
    for method in ("get", "patch", "delete"):
        assert getattr(acme_api, method)(f"/api/v1/custom-fields/{theirs.pk}").status_code == 404
    assert CustomField.objects.filter(pk=theirs.pk).exists()


# --- suppressions ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_suppression_add_list_and_filter(acme_api: APIClient, acme: Workspace) -> None:
    response = acme_api.post(
        "/api/v1/suppressions", {"email": "Gone@Example.com", "reason": "complaint", "note": "Phoned"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["email"], body["reason"], body["note"]) == ("Gone@example.com", "complaint", "Phoned")
    assert body["email_hash"] == email_hash("gone@example.com")
    again = acme_api.post("/api/v1/suppressions", {"email": "gone@example.com"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    acme_api.post("/api/v1/suppressions", {"email": "other@example.com"}, format="json")
    rows = acme_api.get("/api/v1/suppressions").json()["results"]
    assert [row["reason"] for row in rows] == ["manual", "complaint"]
    assert [r["id"] for r in acme_api.get("/api/v1/suppressions?email=GONE@example.com").json()["results"]] == [
        body["id"]
    ]
    assert len(acme_api.get("/api/v1/suppressions?reason=manual").json()["results"]) == 1
    assert acme_api.get(f"/api/v1/suppressions/{body['id']}").json() == body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [({"email": "nope"}, "email"), ({"email": "a@example.com", "reason": "erased"}, "reason"), ({}, "email")],
)
def test_invalid_suppressions_are_400(acme_api: APIClient, payload: dict, field: str) -> None:
    response = acme_api.post("/api/v1/suppressions", payload, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_a_key_with_contacts_write_lifts_a_suppression(acme: Workspace) -> None:
    suppression = suppression_add(workspace=acme, email="a@example.com", reason=SuppressionReason.MANUAL)
    reader = key_client(api_key(acme, scopes=["contacts:read"]))
    assert reader.delete(f"/api/v1/suppressions/{suppression.pk}").status_code == 403
    writer = key_client(api_key(acme, scopes=["contacts:write"]))
    assert writer.delete(f"/api/v1/suppressions/{suppression.pk}").status_code == 204
    assert not Suppression.objects.exists()
    # The address can be a contact again.
    assert writer.post("/api/v1/contacts", {"email": "a@example.com"}, format="json").status_code == 201


@pytest.mark.django_db
def test_in_the_browser_only_owners_lift_suppressions(acme: Workspace) -> None:
    suppression = suppression_add(workspace=acme, email="a@example.com", reason=SuppressionReason.HARD_BOUNCE)
    url = f"/api/v1/suppressions/{suppression.pk}"
    marketer = logged_in(member(acme, Role.MARKETER))
    response = marketer.delete(url)
    assert response.status_code == 403 and "owner" in response.json()["error"]["message"]
    assert Suppression.objects.exists()
    owner = logged_in(member(acme, Role.OWNER))
    assert owner.delete(url).status_code == 204
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_suppressions_of_another_workspace_are_404(acme_api: APIClient, globex: Workspace) -> None:
    theirs = suppression_add(workspace=globex, email="a@example.com", reason=SuppressionReason.MANUAL)
    assert acme_api.get(f"/api/v1/suppressions/{theirs.pk}").status_code == 404
    assert acme_api.delete(f"/api/v1/suppressions/{theirs.pk}").status_code == 404
    assert acme_api.get("/api/v1/suppressions?email=a@example.com").json()["results"] == []
    assert Suppression.objects.filter(pk=theirs.pk).exists()
    assert not Contact.objects.exists()
