"""The contacts API: create-or-update by address, read, change, delete, filters, lookup, scopes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audiences.models import Contact, CustomField, FieldType, SuppressionReason
from audiences.services import contact_save, list_save, suppression_add
from esp.models import Role, Workspace
from tests.conftest import key_client, logged_in
from tests.factories import api_key, member


@pytest.fixture
def income_band(acme: Workspace) -> CustomField:
    return CustomField.objects.create(
        workspace=acme, key="income_band", label="Income band", type=FieldType.CHOICE, choices=["low", "high"]
    )


@pytest.mark.django_db
def test_create_read_update_delete_round_trip(acme_api: APIClient, income_band: CustomField) -> None:
    created = acme_api.post(
        "/api/v1/contacts",
        {
            "email": "ann@example.com",
            "first_name": "Ann",
            "birth_date": "1990-04-01",
            "country": "bg",
            "attributes": {"income_band": "high"},
            "tags": ["vip", "vip", "new"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["email"] == "ann@example.com" and body["country"] == "BG" and body["birth_date"] == "1990-04-01"
    assert body["attributes"] == {"income_band": "high"} and body["tags"] == ["new", "vip"]
    assert body["source"] == "api" and body["subscriptions"] == []
    url = f"/api/v1/contacts/{body['id']}"

    assert acme_api.get(url).json() == body

    changed = acme_api.patch(url, {"last_name": "Lee", "tags": ["vip"]}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["last_name"] == "Lee" and changed.json()["first_name"] == "Ann"
    assert changed.json()["tags"] == ["vip"] and changed.json()["attributes"] == {"income_band": "high"}

    # A representation sent back as it was read is accepted (read-only fields are ignored).
    echoed = acme_api.patch(url, {**changed.json(), "city": "Sofia"}, format="json")
    assert echoed.status_code == 200 and echoed.json()["city"] == "Sofia"

    assert acme_api.delete(url).status_code == 204
    assert acme_api.get(url).status_code == 404
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_the_same_address_in_another_case_is_the_same_contact(acme_api: APIClient) -> None:
    first = acme_api.post("/api/v1/contacts", {"email": "Foo@Example.COM"}, format="json")
    assert first.status_code == 201
    assert first.json()["email"] == "Foo@example.com"
    second = acme_api.post("/api/v1/contacts", {"email": "foo@example.com", "first_name": "Foo"}, format="json")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["first_name"] == "Foo"
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_a_bad_typed_value_names_the_attribute(acme_api: APIClient, acme: Workspace) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    response = acme_api.post(
        "/api/v1/contacts", {"email": "a@example.com", "attributes": {"orders": "many"}}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == ["attributes.orders"]
    assert "whole number" in error["fields"]["attributes.orders"][0]
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_patch_with_a_bad_typed_value_changes_nothing(
    acme_api: APIClient, acme: Workspace, income_band: CustomField
) -> None:
    contact, _ = contact_save(workspace=acme, data={"email": "a@example.com", "attributes": {"income_band": "low"}})
    response = acme_api.patch(f"/api/v1/contacts/{contact.pk}", {"income_band": "huge"}, format="json")
    assert response.status_code == 400
    assert "attributes.income_band" in response.json()["error"]["fields"]
    contact.refresh_from_db()
    assert contact.attributes == {"income_band": "low"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({}, "email"),
        ({"email": "a@example.com", "gender": "robot"}, "gender"),
        ({"email": "a@example.com", "country": "Bulgaria"}, "country"),
        ({"email": "a@example.com", "shoe_size": 42}, "shoe_size"),
        ({"email": "a@example.com", "attributes": ["x"]}, "attributes"),
        ({"email": "a@example.com", "attributes": {"undeclared": 1}}, "attributes.undeclared"),
    ],
)
def test_invalid_contacts_are_400_naming_the_field(acme_api: APIClient, payload: dict, field: str) -> None:
    response = acme_api.post("/api/v1/contacts", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_a_suppressed_address_is_refused(acme_api: APIClient, acme: Workspace) -> None:
    suppression_add(workspace=acme, email="gone@example.com", reason=SuppressionReason.COMPLAINT)
    response = acme_api.post("/api/v1/contacts", {"email": "Gone@example.com"}, format="json")
    assert response.status_code == 400
    assert "suppression" in response.json()["error"]["fields"]["email"][0]


@pytest.mark.django_db
def test_patch_to_an_address_of_another_contact_is_400(acme_api: APIClient, acme: Workspace) -> None:
    contact_save(workspace=acme, data={"email": "taken@example.com"})
    contact, _ = contact_save(workspace=acme, data={"email": "mine@example.com"})
    response = acme_api.patch(f"/api/v1/contacts/{contact.pk}", {"email": "TAKEN@example.com"}, format="json")
    assert response.status_code == 400 and "email" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_detail_shows_subscriptions(acme_api: APIClient, acme: Workspace) -> None:
    from audiences.services import ConsentContext, subscription_subscribe

    contact, _ = contact_save(workspace=acme, data={"email": "a@example.com"})
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": False})
    subscription_subscribe(workspace=acme, contact=contact, mailing_list=news, context=ConsentContext(source="api"))
    body = acme_api.get(f"/api/v1/contacts/{contact.pk}").json()
    assert body["subscriptions"] == [{"list": news.pk, "status": "subscribed"}]


@pytest.mark.django_db
def test_filters(acme_api: APIClient, acme: Workspace) -> None:
    from audiences.services import ConsentContext, subscription_subscribe

    ann, _ = contact_save(
        workspace=acme, data={"email": "ann@shop.test", "first_name": "Ann", "external_id": "u1", "tags": ["vip"]}
    )
    bob, _ = contact_save(workspace=acme, data={"email": "bob@shop.test", "last_name": "Annersen"})
    cid, _ = contact_save(workspace=acme, data={"email": "cid@other.test", "tags": ["vip"]})
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": True})
    subscription_subscribe(workspace=acme, contact=cid, mailing_list=news, context=ConsentContext(source="api"))

    def ids(query: str) -> list[int]:
        response = acme_api.get(f"/api/v1/contacts{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids("") == [cid.pk, bob.pk, ann.pk]
    assert ids("?email=ANN@SHOP.TEST") == [ann.pk]
    assert ids("?external_id=u1") == [ann.pk]
    assert ids("?tag=vip") == [cid.pk, ann.pk]
    assert ids(f"?list={news.pk}") == [cid.pk]
    assert ids(f"?list={news.pk}&status=subscribed") == []
    assert ids(f"?list={news.pk}&status=pending") == [cid.pk]
    assert ids("?q=ann") == [bob.pk, ann.pk]
    assert ids("?q=ann&tag=vip") == [ann.pk]
    assert acme_api.get("/api/v1/contacts?list=abc").json()["error"]["fields"] == {"list": ["Expected a whole number."]}


@pytest.mark.django_db
def test_list_is_cursor_paginated(acme_api: APIClient, acme: Workspace) -> None:
    created = [contact_save(workspace=acme, data={"email": f"c{n}@example.com"})[0].pk for n in range(5)]
    seen: list[int] = []
    url = "/api/v1/contacts?limit=2"
    while url:
        page = acme_api.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == sorted(created, reverse=True)


@pytest.mark.django_db
def test_lookup_by_email_or_external_id(acme_api: APIClient, acme: Workspace, globex: Workspace) -> None:
    ann, _ = contact_save(workspace=acme, data={"email": "Ann@example.com", "external_id": "u-1"})
    other, _ = contact_save(workspace=globex, data={"email": "globex-only@example.com", "external_id": "g-1"})
    assert acme_api.get("/api/v1/contacts/lookup?email=ann@EXAMPLE.com").json()["id"] == ann.pk
    assert acme_api.get("/api/v1/contacts/lookup?external_id=u-1").json()["id"] == ann.pk
    missing = acme_api.get("/api/v1/contacts/lookup?email=nobody@example.com")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    # Another workspace's contact is not found by its address or id either.
    assert acme_api.get(f"/api/v1/contacts/lookup?email={other.email}").status_code == 404
    assert acme_api.get("/api/v1/contacts/lookup?external_id=g-1").status_code == 404
    bare = acme_api.get("/api/v1/contacts/lookup")
    assert bare.status_code == 400 and "email" in bare.json()["error"]["fields"]


@pytest.mark.django_db
def test_contacts_of_another_workspace_are_404(acme_api: APIClient, globex: Workspace) -> None:
    other, _ = contact_save(workspace=globex, data={"email": "x@example.com"})
    for method in ("get", "patch", "delete"):
        assert getattr(acme_api, method)(f"/api/v1/contacts/{other.pk}").status_code == 404
    assert acme_api.get("/api/v1/contacts").json()["results"] == []
    assert Contact.objects.filter(pk=other.pk).exists()


@pytest.mark.django_db
def test_scopes(acme: Workspace) -> None:
    reader = key_client(api_key(acme, scopes=["contacts:read"]))
    assert reader.get("/api/v1/contacts").status_code == 200
    refused = reader.post("/api/v1/contacts", {"email": "a@example.com"}, format="json")
    assert refused.status_code == 403 and "contacts:write" in refused.json()["error"]["message"]
    assert reader.post("/api/v1/contacts/bulk", {"contacts": []}, format="json").status_code == 403

    no_contacts = key_client(api_key(acme, scopes=["events:write"]))
    response = no_contacts.get("/api/v1/contacts")
    assert response.status_code == 403 and "contacts:read" in response.json()["error"]["message"]
    assert no_contacts.get("/api/v1/contacts/lookup?email=a@example.com").status_code == 403
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_browser_session_roles(acme: Workspace) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    assert viewer.get("/api/v1/contacts").status_code == 200
    response = viewer.post("/api/v1/contacts", {"email": "a@example.com"}, content_type="application/json")
    assert response.status_code == 403
    marketer = logged_in(member(acme, Role.MARKETER))
    response = marketer.post("/api/v1/contacts", {"email": "a@example.com"}, content_type="application/json")
    assert response.status_code == 201


@pytest.mark.django_db
def test_the_api_root_lists_the_audience_endpoints(acme_api: APIClient) -> None:
    root = acme_api.get("/api/v1/").json()
    assert {"contacts", "lists", "custom_fields", "suppressions"} <= set(root)
