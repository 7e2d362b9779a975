"""The broadcasts API with a real key: compose, count, schedule now, pause / resume / cancel,
duplicate, a test send; bad input is a 400 naming the field, another workspace's broadcast a 404,
a key without the scope a 403."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audiences.models import Contact, MailingList, Subscription, SubscriptionStatus
from campaigns.models import Broadcast, Message, MessageSource
from esp.models import Workspace
from tests.conftest import key_client
from tests.factories import EmailTemplateFactory, api_key

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
def shop(acme: Workspace) -> dict[str, Any]:
    news = MailingList.objects.create(workspace=acme, name="News")
    for email in ("ann@example.com", "bob@example.com"):
        contact = Contact.objects.create(workspace=acme, email=email)
        Subscription.objects.create(
            workspace=acme, contact=contact, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED
        )
    return {"news": news, "template": EmailTemplateFactory(workspace=acme, name="Sale")}


def test_compose_count_and_send_now(acme_api: APIClient, shop: dict[str, Any]) -> None:
    made = acme_api.post(
        "/api/v1/broadcasts",
        {"name": "Sale", "include_lists": [shop["news"].pk], "template": shop["template"].pk, "subject": "−20 %"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["status"] == "draft" and body["include_lists"] == [shop["news"].pk] and body["progress"]["total"] == 0
    pk = body["id"]
    assert acme_api.get(f"/api/v1/broadcasts/{pk}/audience").json() == {
        "matching": 2, "without_consent": 0, "suppressed": 0, "recipients": 2}  # fmt: skip
    sent = acme_api.post(f"/api/v1/broadcasts/{pk}/schedule")
    assert sent.status_code == 200 and sent.json()["status"] == "sending" and sent.json()["recipients"] == 2
    assert sent.json()["progress"]["queued"] == 2
    assert Message.objects.filter(source=str(MessageSource.broadcast(pk))).count() == 2
    assert acme_api.post(f"/api/v1/broadcasts/{pk}/pause").json()["status"] == "paused"
    assert acme_api.post(f"/api/v1/broadcasts/{pk}/resume").json()["status"] == "sending"
    cancelled = acme_api.post(f"/api/v1/broadcasts/{pk}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["skipped_by_reason"] == {
        "broadcast_cancelled": 2
    }
    copy = acme_api.post(f"/api/v1/broadcasts/{pk}/duplicate")
    assert copy.status_code == 201 and copy.json()["status"] == "draft" and copy.json()["name"] == "Sale (copy)"
    assert acme_api.delete(f"/api/v1/broadcasts/{pk}").status_code == 409
    assert acme_api.delete(f"/api/v1/broadcasts/{copy.json()['id']}").status_code == 204


def test_local_time_is_a_wall_clock(acme_api: APIClient, shop: dict[str, Any]) -> None:
    made = acme_api.post(
        "/api/v1/broadcasts",
        {"name": "Morning", "send_mode": "local", "local_at": "2030-05-01T10:00:00"},
        format="json",
    ).json()
    assert made["local_at"] == "2030-05-01T10:00:00" and made["send_mode"] == "local"
    with_offset = acme_api.post(
        "/api/v1/broadcasts", {"name": "Morning", "send_mode": "local", "local_at": "2030-05-01T10:00:00+02:00"},
        format="json",
    )  # fmt: skip
    assert with_offset.status_code == 400 and "local_at" in with_offset.json()["error"]["fields"]


def test_bad_input_is_a_400_naming_the_field(acme_api: APIClient, shop: dict[str, Any], globex: Workspace) -> None:
    theirs = MailingList.objects.create(workspace=globex, name="Theirs")
    refused = acme_api.post("/api/v1/broadcasts", {"name": "x", "include_lists": [theirs.pk]}, format="json")
    assert refused.status_code == 400 and "include_lists" in refused.json()["error"]["fields"]
    assert acme_api.post("/api/v1/broadcasts", {"name": "x", "audience": []}, format="json").status_code == 400
    assert acme_api.post("/api/v1/broadcasts", {"name": "x", "send_mode": "later"}, format="json").status_code == 400
    draft = acme_api.post("/api/v1/broadcasts", {"name": "Empty"}, format="json").json()
    scheduled = acme_api.post(f"/api/v1/broadcasts/{draft['id']}/schedule")
    assert scheduled.status_code == 400 and {"template", "include_lists"} <= set(scheduled.json()["error"]["fields"])
    assert not Broadcast.objects.filter(status="scheduled").exists()


def test_test_send(acme_api: APIClient, shop: dict[str, Any]) -> None:
    pk = acme_api.post(
        "/api/v1/broadcasts", {"name": "Sale", "template": shop["template"].pk, "subject": "Test"}, format="json"
    ).json()["id"]
    queued = acme_api.post(f"/api/v1/broadcasts/{pk}/test", {"to": "me@shop.example"}, format="json")
    assert queued.status_code == 202
    message = Message.objects.get(pk=queued.json()["message"])
    assert message.to_email == "me@shop.example" and message.subject_override == "Test" and message.contact is None


def test_another_workspace_and_scopes(acme: Workspace, globex: Workspace, shop: dict[str, Any]) -> None:
    pk = key_client(api_key(acme)).post("/api/v1/broadcasts", {"name": "Ours"}, format="json").json()["id"]
    theirs = key_client(api_key(globex))
    assert theirs.get(f"/api/v1/broadcasts/{pk}").status_code == 404
    assert theirs.post(f"/api/v1/broadcasts/{pk}/cancel").status_code == 404
    assert "Ours" not in theirs.get("/api/v1/broadcasts").content.decode()
    reader = key_client(api_key(acme, scopes=["broadcasts:read"]))
    assert reader.get(f"/api/v1/broadcasts/{pk}").status_code == 200
    assert reader.post(f"/api/v1/broadcasts/{pk}/schedule").status_code == 403
    assert key_client(api_key(acme, scopes=["series:read"])).get("/api/v1/broadcasts").status_code == 403


def test_an_ab_test_through_the_api(acme_api: APIClient, shop: dict[str, Any]) -> None:
    pk = acme_api.post(
        "/api/v1/broadcasts",
        {"name": "Sale", "include_lists": [shop["news"].pk], "template": shop["template"].pk},
        format="json",
    ).json()["id"]
    assert acme_api.get(f"/api/v1/broadcasts/{pk}/ab").status_code == 404
    refused = acme_api.put(f"/api/v1/broadcasts/{pk}/ab", {"variants": [{"subject": "Only one"}]}, format="json")
    assert refused.status_code == 400
    set_up = acme_api.put(
        f"/api/v1/broadcasts/{pk}/ab",
        {"variants": [{"subject": "−20 % today"}, {"subject": "Your autumn sale"}], "test_percent": 90,
         "winner_mode": "manual"},
        format="json",
    )  # fmt: skip
    assert set_up.status_code == 200, set_up.json()
    assert [v["subject"] for v in set_up.json()["variants"]] == ["−20 % today", "Your autumn sale"]
    assert set_up.json()["state"] == "setup"
    acme_api.post(f"/api/v1/broadcasts/{pk}/schedule")
    testing = acme_api.get(f"/api/v1/broadcasts/{pk}/ab").json()
    assert testing["state"] == "testing" and sum(v["messages"] for v in testing["variants"]) == 2
    assert acme_api.post(f"/api/v1/broadcasts/{pk}/ab/pick", {"letter": "E"}, format="json").status_code == 400
    assert acme_api.get(f"/api/v1/broadcasts/{pk}/ab/pick").status_code == 405
