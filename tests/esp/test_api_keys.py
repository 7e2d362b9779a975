"""API keys: stored only as a hash, scoped, revocable, Bearer or Basic, throttled per key."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from esp import services
from esp.api.throttling import ApiKeyRateThrottle
from esp.models import ApiKey, Workspace
from tests.conftest import key_client
from tests.factories import api_key


def _tables_containing(text: str) -> list[str]:
    """Every table of the database whose rows, as text, contain `text`."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', [f"%{text}%"])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append(table)
    return found


@pytest.mark.django_db
def test_only_a_hash_is_stored(acme: Workspace) -> None:
    created = services.api_key_create(workspace=acme, name="shop", scopes=["events:write"], created_by=None)
    # esk_<prefix>_<random>: the random part may itself hold "_", so split from the left.
    secret_part = created.secret.split("_", 2)[2]
    assert _tables_containing(secret_part) == []
    assert created.api_key.key_hash != created.secret
    assert created.secret.startswith(f"esk_{created.api_key.prefix}_")


@pytest.mark.django_db
def test_key_created_in_the_browser_is_shown_once(acme_client: Client) -> None:
    form = {"name": "Shop backend", "scopes": ["events:write", "contacts:read"], "form_token": "f1"}
    response = acme_client.post("/settings/api-keys/", form)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    secret = page.split('id="new-api-key">')[1].split("<")[0]
    assert secret.startswith("esk_")
    assert secret not in acme_client.get("/settings/api-keys/").content.decode()
    assert key_client(secret).get("/api/v1/me").json()["api_key"]["scopes"] == ["contacts:read", "events:write"]
    # Reloading the page re-sends the form: no second key whose secret nobody saw.
    again = acme_client.post("/settings/api-keys/", form, follow=True)
    assert "submitted already" in again.content.decode() and "esk_" not in again.content.decode().split("<table")[0]
    assert ApiKey.objects.count() == 1


@pytest.mark.django_db
def test_bearer_and_basic_auth(acme: Workspace) -> None:
    secret = api_key(acme)
    assert key_client(secret).get("/api/v1/me").status_code == 200
    assert key_client(secret, basic=True).get("/api/v1/me").status_code == 200
    assert ApiKey.objects.get().last_used_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer esk_nope_nope", "Basic !!!notbase64", "Token abc", "Bearer "])
def test_bad_credentials_are_401_json(acme: Workspace, header: str) -> None:
    response = Client().get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401


@pytest.mark.django_db
def test_no_credentials_is_401(acme: Workspace) -> None:
    response = Client().get("/api/v1/outbox/messages")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_revoked_key_is_401(acme: Workspace, acme_client: Client) -> None:
    secret = api_key(acme)
    key = ApiKey.objects.get()
    assert acme_client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 302
    response = key_client(secret).get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_missing_scope_is_403(acme: Workspace) -> None:
    client = key_client(api_key(acme, scopes=["events:write"]))
    response = client.get("/api/v1/outbox/messages")
    assert response.status_code == 403
    assert "messages:read" in response.json()["error"]["message"]
    assert client.get("/api/v1/me").status_code == 200  # any key may ask who it is


@pytest.mark.django_db
def test_unknown_scope_is_refused(acme: Workspace, acme_client: Client) -> None:
    response = acme_client.post("/settings/api-keys/", {"name": "x", "scopes": ["everything"], "form_token": "t"})
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_throttled_per_key(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ApiKeyRateThrottle, "get_rate", lambda self: "3/min")
    busy, other = key_client(api_key(acme)), key_client(api_key(acme))
    statuses = [busy.get("/api/v1/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert busy.get("/api/v1/me").json()["error"]["status"] == 429
    assert other.get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(acme: Workspace, django_assert_num_queries: object) -> None:
    secret = api_key(acme)
    services.api_key_authenticate(secret)
    first = ApiKey.objects.get().last_used_at
    services.api_key_authenticate(secret)
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=timezone.now() - timezone.timedelta(minutes=5))
    services.api_key_authenticate(secret)
    assert ApiKey.objects.get().last_used_at > first
