"""The lists and subscriptions API: CRUD with counts, subscribing with double opt-in and consent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audiences.models import (
    ConsentRecord,
    Contact,
    MailingList,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from audiences.services import ConsentContext, contact_save, list_save, subscription_subscribe, suppression_add
from esp.models import OutboxMessage, Workspace


@pytest.mark.django_db
def test_list_round_trip(acme_api: APIClient) -> None:
    created = acme_api.post("/api/v1/lists", {"name": "News", "double_opt_in": False}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["name"] == "News" and body["double_opt_in"] is False and body["is_public"] is False
    assert body["subscribers"] == {"pending": 0, "subscribed": 0, "unsubscribed": 0}
    url = f"/api/v1/lists/{body['id']}"
    assert acme_api.get(url).json() == body
    changed = acme_api.patch(url, {"description": "Weekly"}, format="json")
    assert changed.status_code == 200 and changed.json()["description"] == "Weekly"
    assert changed.json()["name"] == "News"
    assert [row["name"] for row in acme_api.get("/api/v1/lists").json()["results"]] == ["News"]
    assert acme_api.delete(url).status_code == 204
    assert acme_api.get(url).status_code == 404


@pytest.mark.django_db
def test_list_names_are_unique_case_insensitively(acme_api: APIClient, acme: Workspace) -> None:
    list_save(workspace=acme, data={"name": "News"})
    other = list_save(workspace=acme, data={"name": "Deals"})
    response = acme_api.post("/api/v1/lists", {"name": "news"}, format="json")
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]
    response = acme_api.patch(f"/api/v1/lists/{other.pk}", {"name": "NEWS"}, format="json")
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]
    assert acme_api.post("/api/v1/lists", {}, format="json").json()["error"]["fields"]["name"]


@pytest.mark.django_db
def test_detail_counts_subscribers_by_status_in_one_query(acme_api: APIClient, acme: Workspace) -> None:
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": True})
    context = ConsentContext(source="admin")
    for n, wanted in enumerate(["pending", "pending", "subscribed", "unsubscribed"]):
        contact, _ = contact_save(workspace=acme, data={"email": f"c{n}@example.com"})
        subscription = subscription_subscribe(workspace=acme, contact=contact, mailing_list=news, context=context)
        Subscription.objects.filter(pk=subscription.pk).update(status=wanted)
    with CaptureQueriesContext(connection) as queries:
        body = acme_api.get(f"/api/v1/lists/{news.pk}").json()
    assert body["subscribers"] == {"pending": 2, "subscribed": 1, "unsubscribed": 1}
    assert len([q for q in queries.captured_queries if "audiences_subscription" in q["sql"]]) == 1


@pytest.mark.django_db
def test_double_opt_in_subscription_is_pending_and_mails_a_confirmation(
    acme_api: APIClient,
    acme: Workspace,
    run_tasks_now: None,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": True})
    with django_capture_on_commit_callbacks(execute=True):
        response = acme_api.post(
            f"/api/v1/lists/{news.pk}/subscriptions",
            {"email": "New@Example.com", "consent_text": "Send me the news"},
            format="json",
            HTTP_USER_AGENT="ShopBackend/1.0",
        )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending"
    contact = Contact.objects.get(workspace=acme)
    assert contact.email == "New@example.com" and response.json()["contact"] == contact.pk
    mail = OutboxMessage.objects.get(workspace=acme)
    assert mail.to == ["New@example.com"] and "/subscribe/confirm/" in mail.text_body
    record = ConsentRecord.objects.get()
    assert (record.action, record.source, record.text_shown) == ("subscribed", "api", "Send me the news")
    assert record.ip_address == "127.0.0.1" and record.user_agent == "ShopBackend/1.0"


@pytest.mark.django_db
def test_single_opt_in_subscribes_a_known_contact_by_id(acme_api: APIClient, acme: Workspace) -> None:
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": False})
    contact, _ = contact_save(workspace=acme, data={"email": "a@example.com"})
    response = acme_api.post(f"/api/v1/lists/{news.pk}/subscriptions", {"contact_id": contact.pk}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "subscribed"
    again = acme_api.post(f"/api/v1/lists/{news.pk}/subscriptions", {"email": "A@example.com"}, format="json")
    assert again.status_code == 200 and again.json()["status"] == "subscribed"
    assert Subscription.objects.count() == 1 and Contact.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("known", [True, False])
def test_a_suppressed_address_cannot_be_subscribed(acme_api: APIClient, acme: Workspace, known: bool) -> None:
    news = list_save(workspace=acme, data={"name": "News"})
    if known:
        contact_save(workspace=acme, data={"email": "gone@example.com"})
    suppression_add(workspace=acme, email="gone@example.com", reason=SuppressionReason.COMPLAINT)
    response = acme_api.post(f"/api/v1/lists/{news.pk}/subscriptions", {"email": "gone@example.com"}, format="json")
    assert response.status_code == 400
    assert "suppression" in response.json()["error"]["fields"]["email"][0]
    assert not Subscription.objects.exists() and not ConsentRecord.objects.exists()
    assert Contact.objects.count() == (1 if known else 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "email"), ({"email": "a@example.com", "contact_id": 1}, "email"), ({"email": "nope"}, "email")],
)
def test_subscribe_needs_one_valid_address_or_contact(
    acme_api: APIClient, acme: Workspace, payload: dict, field: str
) -> None:
    news = list_save(workspace=acme, data={"name": "News"})
    response = acme_api.post(f"/api/v1/lists/{news.pk}/subscriptions", payload, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_a_contact_of_another_workspace_cannot_be_subscribed(
    acme_api: APIClient, acme: Workspace, globex: Workspace
) -> None:
    news = list_save(workspace=acme, data={"name": "News"})
    theirs, _ = contact_save(workspace=globex, data={"email": "x@example.com"})
    response = acme_api.post(f"/api/v1/lists/{news.pk}/subscriptions", {"contact_id": theirs.pk}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"contact_id": ["No such contact."]}
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_unsubscribe_records_consent_from_the_api(acme_api: APIClient, acme: Workspace) -> None:
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": False})
    contact, _ = contact_save(workspace=acme, data={"email": "a@example.com"})
    subscription_subscribe(workspace=acme, contact=contact, mailing_list=news, context=ConsentContext(source="form"))
    url = f"/api/v1/lists/{news.pk}/subscriptions/{contact.pk}"
    response = acme_api.delete(url, HTTP_USER_AGENT="ShopBackend/1.0")
    assert response.status_code == 200 and response.json()["status"] == "unsubscribed"
    assert Subscription.objects.get().status == SubscriptionStatus.UNSUBSCRIBED
    record = ConsentRecord.objects.filter(action="unsubscribed").get()
    assert record.source == "api" and record.user_agent == "ShopBackend/1.0" and record.ip_address == "127.0.0.1"
    assert acme_api.delete(url).status_code == 200  # idempotent, no second record
    assert ConsentRecord.objects.filter(action="unsubscribed").count() == 1
    stranger, _ = contact_save(workspace=acme, data={"email": "b@example.com"})
    assert acme_api.delete(f"/api/v1/lists/{news.pk}/subscriptions/{stranger.pk}").status_code == 404


@pytest.mark.django_db
def test_lists_of_another_workspace_are_404(acme_api: APIClient, acme: Workspace, globex: Workspace) -> None:
    theirs = list_save(workspace=globex, data={"name": "Theirs"})
    mine, _ = contact_save(workspace=acme, data={"email": "a@example.com"})
    for method in ("get", "patch", "delete"):
        assert getattr(acme_api, method)(f"/api/v1/lists/{theirs.pk}").status_code == 404
    response = acme_api.post(f"/api/v1/lists/{theirs.pk}/subscriptions", {"email": "a@example.com"}, format="json")
    assert response.status_code == 404
    assert acme_api.delete(f"/api/v1/lists/{theirs.pk}/subscriptions/{mine.pk}").status_code == 404
    ours = list_save(workspace=acme, data={"name": "Ours"})
    their_contact, _ = contact_save(workspace=globex, data={"email": "b@example.com"})
    assert acme_api.delete(f"/api/v1/lists/{ours.pk}/subscriptions/{their_contact.pk}").status_code == 404
    assert MailingList.objects.filter(pk=theirs.pk).exists() and not Subscription.objects.exists()


@pytest.mark.django_db
def test_list_writes_need_contacts_write(acme: Workspace) -> None:
    from tests.conftest import key_client
    from tests.factories import api_key

    news = list_save(workspace=acme, data={"name": "News"})
    reader = key_client(api_key(acme, scopes=["contacts:read"]))
    assert reader.get(f"/api/v1/lists/{news.pk}").status_code == 200
    assert reader.post("/api/v1/lists", {"name": "X"}, format="json").status_code == 403
    response = reader.post(f"/api/v1/lists/{news.pk}/subscriptions", {"email": "a@example.com"}, format="json")
    assert response.status_code == 403
    assert not Subscription.objects.exists()
