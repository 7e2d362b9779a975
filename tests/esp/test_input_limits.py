"""Input the database cannot store and bodies shaped to exhaust the server are refused where
they enter, with the API's JSON error shape: NUL and lone surrogates (field-level 400), deep
JSON (400), large bodies (413); and the rate limit: atomic under concurrency, refused keys
throttled by address, open (not a 500) while Redis is down."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from audiences.models import Contact
from esp.api.throttling import ApiKeyRateThrottle, window_hit
from esp.models import Workspace
from tests.conftest import key_client
from tests.factories import api_key

NUL = "\u0000"


def post_json(client: Client, path: str, body: bytes | str, **extra: Any) -> Any:
    return client.generic("POST", path, body, content_type="application/json", **extra)


def fields_of(response: Any) -> dict[str, list[str]]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]["fields"]  # type: ignore[no-any-return]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/contacts", {"email": "a@x.com", "first_name": f"A{NUL}"}, "first_name"),
        ("post", "/api/v1/contacts", {"email": "a@x.com", "attributes": {"k": f"v{NUL}"}}, "attributes.k"),
        (
            "post",
            "/api/v1/contacts/bulk",
            {"contacts": [{"email": "b@x.com", "last_name": NUL}]},
            "contacts.0.last_name",
        ),
        (
            "post",
            "/api/v1/segments/count",
            {"rules": {"op": "and", "conditions": [{"field": "email", "operator": "contains", "value": NUL}]}},
            "rules.conditions.0.value",
        ),
        ("post", "/api/v1/messages", {"template": 1, "contact": {"email": "a@x.com"}, "data": {"x": NUL}}, "data.x"),
    ],
)
def test_nul_in_a_json_body_is_a_field_level_400(
    acme_api: APIClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = post_json(acme_api, path, json.dumps(body))
    assert response.status_code == 400
    assert field in fields_of(response)
    assert "NUL" in fields_of(response)[field][0]
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_nul_in_a_key_and_a_lone_surrogate_are_refused(acme: Workspace, acme_api: APIClient) -> None:
    contact = Contact.objects.create(workspace=acme, email="c@x.com")
    patched = acme_api.generic(
        "PATCH", f"/api/v1/contacts/{contact.pk}", '{"first_name": "\\ud800"}', content_type="application/json"
    )
    assert patched.status_code == 400
    assert "surrogate" in fields_of(patched)["first_name"][0]
    keyed = post_json(acme_api, "/api/v1/contacts", '{"email": "d@x.com", "attributes": {"a\\u0000": 1}}')
    assert keyed.status_code == 400
    assert list(fields_of(keyed)) == ["attributes.'a\\x00'"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/v1/contacts/lookup?email=a%00b@x.com", "email"),
        ("/api/v1/contacts?email=%00", "email"),
    ],
)
def test_nul_in_an_api_query_string_is_a_400_naming_the_parameter(acme_api: APIClient, query: str, field: str) -> None:
    response = acme_api.get(query)
    assert response.status_code == 400
    assert field in fields_of(response)


@pytest.mark.django_db
def test_nul_in_a_page_query_string_is_a_readable_400(acme_client: Client) -> None:
    response = acme_client.get("/audience/contacts/?q=%00")
    assert response.status_code == 400
    assert b"cannot be stored" in response.content
    assert b"<code>q</code>" in response.content


@pytest.mark.django_db
def test_nul_in_a_form_post_is_a_400(acme_client: Client) -> None:
    body = urlencode({"name": f"x{NUL}y"})
    response = acme_client.post("/audience/lists/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert b"<code>name</code>" in response.content


@pytest.mark.django_db
def test_nul_in_tracking_event_data_is_refused(acme: Workspace) -> None:
    key = api_key(acme, scopes=["events:write"])
    body = json.dumps({"userId": "u1", "event": "Viewed", "properties": {"name": f"a{NUL}"}})
    response = post_json(Client(), "/v1/track", body, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400
    assert "properties.name" in fields_of(response)
    escaped_backslash = json.dumps({"userId": "u1", "event": "Viewed", "properties": {"name": "\\u0000"}})
    assert post_json(Client(), "/v1/track", escaped_backslash, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


@pytest.mark.django_db
def test_deep_json_is_a_400_not_a_recursion_error(acme_api: APIClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    response = post_json(acme_api, "/api/v1/segments/count", deep)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"parse_error", "invalid"}
    nested: Any = 1
    for _ in range(40):
        nested = {"a": nested}
    moderately = post_json(acme_api, "/api/v1/segments/count", json.dumps({"rules": nested, "note": "[[[["}))
    assert moderately.status_code == 400
    assert "nests at most 32 levels" in moderately.json()["error"]["message"]
    brackets_in_a_string = {"rules": {"match": "all", "conditions": []}, "note": "[" * 100}
    response = post_json(acme_api, "/api/v1/segments/count", json.dumps(brackets_in_a_string))
    assert "nests at most" not in response.content.decode()


@pytest.mark.django_db
def test_a_body_over_the_limit_is_a_413_in_json(acme_api: APIClient, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 100_000
    contacts = [{"email": f"c{i}@x.com", "first_name": "x" * 50} for i in range(3000)]
    response = post_json(acme_api, "/api/v1/contacts/bulk", json.dumps({"contacts": contacts}))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_the_default_limit_takes_a_large_bulk_body_and_refuses_15_mb(acme_api: APIClient) -> None:
    big = json.dumps({"contacts": [{"email": "a@x.com", "first_name": "x" * (15 * 1024 * 1024)}]})
    response = post_json(acme_api, "/api/v1/contacts/bulk", big)
    assert response.status_code == 413
    assert response.json()["error"]["status"] == 413


# --- rate limits ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_window_counter_is_atomic_under_threads() -> None:
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(50):
            ok = window_hit("test:atomic", 120, 3600) is None
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 500
    assert allowed.count(True) == 120


@pytest.mark.django_db(transaction=True)
def test_the_per_key_limit_holds_under_concurrent_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.factories import WorkspaceFactory

    monkeypatch.setattr(ApiKeyRateThrottle, "get_rate", lambda self: "30/hour")
    secret = api_key(WorkspaceFactory(slug="threads"))
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        client = key_client(secret)
        for _ in range(8):
            status = client.get("/api/v1/me").status_code
            with lock:
                statuses.append(status)
        connection.close()

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 30
    assert statuses.count(429) == 18


@pytest.mark.django_db
def test_unknown_keys_are_throttled_by_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ApiKeyRateThrottle, "get_rate", lambda self: "5/hour")
    statuses = [key_client(f"esk_guess{i}").get("/api/v1/me").status_code for i in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    spoofed = key_client("esk_guess").get("/api/v1/me", HTTP_X_FORWARDED_FOR="10.9.8.7")
    assert spoofed.status_code == 429  # the header is not from a trusted proxy


@pytest.mark.django_db
def test_unknown_keys_on_the_tracking_api_are_throttled_by_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ApiKeyRateThrottle, "get_rate", lambda self: "3/hour")
    body = json.dumps({"userId": "u1", "event": "Viewed"})
    statuses = [
        post_json(Client(), "/v1/track", body, HTTP_AUTHORIZATION=f"Bearer esk_guess{i}").status_code for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.django_db
def test_the_api_answers_while_redis_is_down(acme_api: APIClient, settings: Any) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = acme_api.get("/api/v1/me")
    assert response.status_code == 200
    assert key_client("esk_unknown").get("/api/v1/me").status_code == 401


@pytest.mark.django_db
def test_nul_in_a_webhook_path_is_a_400_not_a_500() -> None:
    response = Client().post("/webhooks/%00x/mailgun/tracking/", data=b"{}", content_type="application/json")
    assert response.status_code == 400
    assert "path" in response.json()["error"]["fields"]
