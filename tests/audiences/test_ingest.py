"""The tracking API (Segment HTTP spec) through raw HTTP: every endpoint, both ways to send the
key, errors and limits with their exact messages, idempotency, time (late events, clock skew),
the identity merge, identify typing, a broker outage, and isolation between workspaces."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError

from audiences import gdpr, pipeline
from audiences.ingest import MAX_BATCH_BYTES, events_ingest
from audiences.models import Contact, ContactAlias, CustomField, Event, FieldType, PendingEvents
from audiences.services import contact_save
from audiences.tasks import process_events
from esp.models import ApiKey, Role, Workspace
from tests.conftest import logged_in
from tests.factories import api_key, member

ENDPOINTS = ("identify", "track", "page", "screen", "alias", "group", "batch", "import")


@pytest.fixture
def acme_key(acme: Workspace) -> str:
    return api_key(acme, scopes=["events:write"])


@pytest.fixture
def globex_key(globex: Workspace) -> str:
    return api_key(globex, scopes=["events:write"])


def basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"{secret}:".encode()).decode()


def send(
    path: str,
    payload: Any,
    key: str | None,
    *,
    bearer: bool = False,
    compress: bool = False,
    client: Client | None = None,
    **headers: str,
) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if compress:
        body = gzip.compress(body)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}" if bearer else basic(key)
    return (client or Client()).post(path, data=body, content_type="application/json", **headers)


def error_of(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["status"] == response.status_code
    return error


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """Run what the request enqueued after commit (with run_tasks_now: the tasks themselves)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- every endpoint ------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_endpoint_stores_its_message(acme: Workspace, acme_key: str) -> None:
    calls = {
        "identify": {"userId": "u1", "traits": {"email": "ann@example.com", "firstName": "Ann"}},
        "track": {"userId": "u1", "event": "Product Viewed", "properties": {"sku": "A-1", "price": 9.5}},
        "page": {"anonymousId": "anon-1", "name": "Pricing", "category": "Docs", "properties": {"path": "/p"}},
        "screen": {"userId": "u1", "name": "Cart", "properties": {"items": 2}},
        "alias": {"previousId": "anon-1", "userId": "u1"},
        "group": {"userId": "u1", "groupId": "g-7", "traits": {"name": "Initech"}},
    }
    for endpoint, payload in calls.items():
        response = send(f"/v1/{endpoint}", {**payload, "messageId": f"m-{endpoint}"}, acme_key)
        assert response.status_code == 200, response.content
        assert response.json() == {"success": True}
    events = {e.message_id: e for e in Event.objects.filter(workspace=acme)}
    assert set(events) == {f"m-{endpoint}" for endpoint in calls}
    assert {e.type for e in events.values()} == set(calls)
    assert (events["m-track"].name, events["m-track"].properties) == ("Product Viewed", {"sku": "A-1", "price": 9.5})
    assert (events["m-page"].name, events["m-page"].properties) == ("Pricing", {"path": "/p", "category": "Docs"})
    assert (events["m-page"].anonymous_id, events["m-page"].user_id) == ("anon-1", "")
    assert (events["m-screen"].name, events["m-screen"].properties) == ("Cart", {"items": 2})
    assert events["m-alias"].properties == {"previousId": "anon-1"}
    assert events["m-group"].properties == {"groupId": "g-7", "traits": {"name": "Initech"}}
    assert events["m-identify"].properties == {"email": "ann@example.com", "firstName": "Ann"}
    ann = Contact.objects.get(workspace=acme)
    assert (ann.email, ann.external_id, ann.first_name) == ("ann@example.com", "u1", "Ann")
    # Everything with userId u1 is the contact's; the anonymous page view is merged by the
    # pipeline (below), not at ingestion.
    assert {e.message_id for e in Event.objects.filter(contact=ann)} == {
        "m-identify", "m-track", "m-screen", "m-alias", "m-group",
    }  # fmt: skip
    assert ContactAlias.objects.get(workspace=acme).alias == "anon-1"


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["batch", "import"])
def test_batch_items_inherit_context_and_sent_at(acme: Workspace, acme_key: str, endpoint: str) -> None:
    sent_at = timezone.now().replace(microsecond=0)
    payload = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Cart Viewed", "messageId": "b1",
             "timestamp": sent_at.isoformat(), "context": {"ip": "203.0.113.5"}},
            {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": "b2",
             "context": {"library": {"name": "own"}}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "messageId": "b3"},
        ],
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}, "locale": "de-DE"},
        "integrations": {"All": True},
        "sentAt": sent_at.isoformat(),
        "writeKey": "ignored when the header has a key",
    }  # fmt: skip
    response = send(f"/v1/{endpoint}", payload, acme_key)
    assert response.status_code == 200, response.content
    events = {e.message_id: e for e in Event.objects.filter(workspace=acme)}
    assert events["b1"].context == {
        "library": {"name": "analytics-python", "version": "2.4.0"}, "locale": "de-DE", "ip": "203.0.113.5",
    }  # fmt: skip
    assert events["b2"].context == {"library": {"name": "own"}, "locale": "de-DE"}
    assert [events[m].type for m in ("b1", "b2", "b3")] == ["track", "page", "identify"]


@pytest.mark.django_db
def test_bearer_basic_and_body_write_key(acme: Workspace, acme_key: str) -> None:
    track = {"userId": "u1", "event": "Signed Up"}
    assert send("/v1/track", {**track, "messageId": "1"}, acme_key).status_code == 200
    assert send("/v1/track", {**track, "messageId": "2"}, acme_key, bearer=True).status_code == 200
    assert send("/v1/track", {**track, "messageId": "3", "writeKey": acme_key}, None).status_code == 200
    assert Event.objects.filter(workspace=acme).count() == 3
    assert ApiKey.objects.get(workspace=acme).last_used_at is not None


@pytest.mark.django_db
def test_authentication_errors(acme: Workspace, acme_key: str) -> None:
    track = {"userId": "u1", "event": "Signed Up"}
    missing = send("/v1/track", track, None)
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == 'Basic realm="tracking"'
    assert error_of(missing) == {
        "status": 401,
        "code": "not_authenticated",
        "message": "An API key is required: HTTP Basic with the key as user name, or 'Bearer <key>'.",
    }
    unknown = send("/v1/track", track, "esk_nope_nope")
    assert error_of(unknown)["message"] == "This API key is unknown or has been revoked."
    garbled = send("/v1/track", track, None, HTTP_AUTHORIZATION="Basic !!!")
    assert error_of(garbled)["message"] == (
        "Use HTTP Basic with the API key as user name, or 'Authorization: Bearer <key>'."
    )
    reader = send("/v1/track", track, api_key(acme, scopes=["contacts:read"]))
    assert reader.status_code == 403
    assert error_of(reader)["message"] == "This API key lacks the scope events:write."
    browser = send("/v1/track", track, None, client=logged_in(member(acme, Role.OWNER)))
    assert error_of(browser)["message"] == "The tracking API takes an API key only."
    ApiKey.objects.filter(workspace=acme).update(revoked_at=timezone.now())
    assert send("/v1/track", track, acme_key).status_code == 401
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_only_post(acme_key: str) -> None:
    assert Client().get("/v1/track", HTTP_AUTHORIZATION=basic(acme_key)).status_code == 405


# --- errors and limits ---------------------------------------------------------------------


@pytest.mark.django_db
def test_invalid_messages_are_named_and_nothing_is_stored(acme: Workspace, acme_key: str) -> None:
    payload = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Fine", "messageId": "ok"},
            {"type": "track", "userId": "u1"},
            {"type": "track", "event": "Nobody"},
            {"type": "shout", "userId": "u1"},
            {"type": "track", "userId": ["u1"], "event": "X", "properties": [1, 2], "timestamp": "yesterday"},
            {"type": "alias", "userId": "u1"},
            {"type": "group", "userId": "u1"},
            "not an object",
            {"type": "track", "userId": "u1", "event": "E" * 201},
        ]
    }
    response = send("/v1/batch", payload, acme_key)
    assert response.status_code == 400
    assert error_of(response) == {
        "status": 400,
        "code": "invalid",
        "message": "Nothing was stored: 8 of 9 messages are not valid.",
        "fields": {
            "batch.1.event": ["The event name is required."],
            "batch.2.userId": ["A userId or an anonymousId is required."],
            "batch.3.type": ["Unknown type 'shout'; one of: track, identify, page, screen, alias, group."],
            "batch.4.userId": ["Expected a string."],
            "batch.4.properties": ["Expected a JSON object."],
            "batch.4.timestamp": ["Expected an ISO 8601 date and time, got 'yesterday'."],
            "batch.5.previousId": ["The previousId is required."],
            "batch.6.groupId": ["The groupId is required."],
            "batch.7": ["Expected a JSON object."],
            "batch.8.event": ["At most 200 characters."],
        },
    }
    assert not Event.objects.exists() and not PendingEvents.objects.exists()


@pytest.mark.django_db
def test_single_call_errors_name_the_field(acme_key: str) -> None:
    response = send("/v1/track", {"userId": "u1", "event": "X", "sentAt": "soon"}, acme_key)
    assert error_of(response)["fields"] == {"sentAt": ["Expected an ISO 8601 date and time, got 'soon'."]}
    assert error_of(response)["message"] == "Nothing was stored: 1 of 1 messages is not valid."
    not_json = send("/v1/track", b'{"userId": "u1",', acme_key)
    assert not_json.status_code == 400 and error_of(not_json)["message"].startswith("The body is not valid JSON: ")
    not_object = send("/v1/track", [1, 2], acme_key)
    assert error_of(not_object)["message"] == "The body must be a JSON object."
    no_batch = send("/v1/batch", {"batch": {"type": "track"}}, acme_key)
    assert error_of(no_batch) == {
        "status": 400,
        "code": "invalid",
        "message": "A batch needs `batch`: a list of messages.",
        "fields": {"batch": ["Expected a list."]},
    }
    bad_context = send("/v1/batch", {"batch": [], "context": "web"}, acme_key)
    assert error_of(bad_context)["fields"] == {"context": ["Expected a JSON object."]}
    nul = send("/v1/track", {"userId": "u1", "event": "X", "properties": {"note": "a\u0000b"}}, acme_key)
    assert error_of(nul)["fields"] == {"properties.note": ["Text may not contain the NUL character (\\u0000)."]}
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_an_event_over_32_kb_rejects_its_batch(acme: Workspace, acme_key: str) -> None:
    big = {"type": "track", "userId": "u1", "event": "Big", "properties": {"blob": "x" * 33_000}}
    small = {"type": "track", "userId": "u1", "event": "Small"}
    response = send("/v1/batch", {"batch": [small, big, small]}, acme_key)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "too_large"
    assert error["message"] == "Nothing was stored: a message is larger than 32 KB."
    size = len(json.dumps(big, separators=(",", ":")))
    assert error["fields"] == {
        "batch.1": [f"The message is {size:,} bytes; at most 32,768 bytes (32 KB) are accepted."]
    }
    single = send("/v1/track", {**big, "type": None}, acme_key)
    assert single.status_code == 413 and list(error_of(single)["fields"]) == ["non_field_errors"]
    # Just under the limit is fine.
    fits = {"type": "track", "userId": "u1", "event": "Fits", "properties": {"blob": "x" * 32_000}}
    assert send("/v1/batch", {"batch": [fits]}, acme_key).status_code == 200
    assert list(Event.objects.values_list("name", flat=True)) == ["Fits"]


@pytest.mark.django_db
def test_a_request_over_500_kb_is_refused_whole(acme_key: str) -> None:
    item = {"type": "track", "userId": "u1", "event": "Filler", "properties": {"blob": "x" * 20_000}}
    payload = {"batch": [item] * 26}  # 26 × ~20 KB > 500 KB, each event under 32 KB
    assert len(json.dumps(payload)) > MAX_BATCH_BYTES
    message = "The request is larger than 512,000 bytes (500 KB); nothing was stored."
    for compress in (False, True):
        response = send("/v1/batch", payload, acme_key, compress=compress)
        assert response.status_code == 413
        assert error_of(response) == {"status": 413, "code": "too_large", "message": message}
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_gzip_bodies(acme: Workspace, acme_key: str) -> None:
    payload = {"batch": [{"type": "track", "userId": "u1", "event": "Zipped", "messageId": str(n)} for n in range(50)]}
    assert send("/v1/batch", payload, acme_key, compress=True).status_code == 200
    assert Event.objects.filter(workspace=acme, name="Zipped").count() == 50
    broken = send("/v1/track", b"not gzip at all", acme_key, HTTP_CONTENT_ENCODING="gzip")
    assert error_of(broken)["message"] == "The body is not valid gzip."
    cut = send(
        "/v1/track", gzip.compress(b'{"userId": "u1", "event": "X"}')[:-12], acme_key, HTTP_CONTENT_ENCODING="gzip"
    )
    assert error_of(cut)["message"] == "The gzip body is cut short."
    brotli = send("/v1/track", {"userId": "u1", "event": "X"}, acme_key, HTTP_CONTENT_ENCODING="br")
    assert brotli.status_code == 415


@pytest.mark.django_db
def test_the_rate_limit_is_per_key_and_says_when_to_retry(
    acme: Workspace, acme_key: str, globex_key: str, settings: Any
) -> None:
    settings.EVENTS_RATE_LIMIT = "2/min"
    track = {"userId": "u1", "event": "X"}
    assert [send("/v1/track", track, acme_key).status_code for _ in range(3)] == [200, 200, 429]
    refused = send("/v1/track", track, acme_key)
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert error_of(refused)["code"] == "throttled"
    assert send("/v1/track", track, globex_key).status_code == 200  # another key, its own budget


@pytest.mark.django_db
def test_the_default_rate_carries_a_bulk_load(acme_key: str) -> None:
    # bench/ingest.py sends ~30 batch requests a second per key; the REST API's budget
    # (API_RATE_LIMIT, 1200/min) would stop a bulk load, the tracking API's own does not.
    client = Client()
    statuses = {send("/v1/batch", {"batch": []}, acme_key, client=client).status_code for _ in range(150)}
    assert statuses == {200}


# --- idempotency and time ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_replayed_message_id_is_stored_and_processed_once(acme: Workspace, acme_key: str) -> None:
    track = {"userId": "u1", "event": "Order Completed", "messageId": "order-1", "properties": {"total": 10}}
    for _ in range(3):
        assert send("/v1/track", track, acme_key).status_code == 200
    assert Event.objects.filter(workspace=acme).count() == 1
    assert PendingEvents.objects.count() == 1  # only the first request handed work on
    assert send("/v1/batch", {"batch": [{**track, "type": "track"}] * 3}, acme_key).status_code == 200
    assert Event.objects.filter(workspace=acme).count() == 1 and PendingEvents.objects.count() == 1


@pytest.mark.django_db
def test_a_replayed_identify_does_not_apply_old_traits_again(acme: Workspace, acme_key: str) -> None:
    first = {"userId": "u1", "traits": {"email": "ann@example.com", "plan": "free"}, "messageId": "id-1"}
    send("/v1/identify", first, acme_key)
    send("/v1/identify", {**first, "traits": {"plan": "pro"}, "messageId": "id-2"}, acme_key)
    send("/v1/identify", first, acme_key)  # a retry of the first, arriving late
    assert Contact.objects.get(workspace=acme).attributes == {"plan": "pro"}


@pytest.mark.django_db
def test_messages_without_message_id_get_one(acme: Workspace, acme_key: str) -> None:
    send("/v1/track", {"userId": "u1", "event": "X"}, acme_key)
    send("/v1/track", {"userId": "u1", "event": "X"}, acme_key)
    ids = list(Event.objects.values_list("message_id", flat=True))
    assert len(ids) == 2 and len(set(ids)) == 2 and all(len(i) == 36 for i in ids)


@pytest.mark.django_db
def test_late_and_out_of_order_events_keep_their_time(acme: Workspace, acme_key: str) -> None:
    now = timezone.now()
    times = [now - dt.timedelta(days=d) for d in (1, 30, 7)]  # arrive newest, oldest, middle
    for n, moment in enumerate(times):
        send(
            "/v1/track",
            {"userId": "u1", "event": "Visit", "messageId": str(n), "timestamp": moment.isoformat()},
            acme_key,
        )
    events = list(Event.objects.filter(workspace=acme).order_by("occurred_at"))
    assert [e.message_id for e in events] == ["1", "2", "0"]
    assert [e.occurred_at for e in events] == sorted(times)
    assert all(e.received_at >= now for e in events)


@pytest.mark.django_db
def test_clock_skew_is_corrected_with_sent_at(acme: Workspace, acme_key: str) -> None:
    """The device's clock is 10 minutes fast: its timestamp and sentAt are both 10 minutes
    ahead; the event happened 30 seconds before it was sent."""
    received = timezone.now()
    device_now = received + dt.timedelta(minutes=10)
    items = [
        {"type": "track", "userId": "u1", "event": "A", "messageId": "a",
         "timestamp": (device_now - dt.timedelta(seconds=30)).isoformat()},
        {"type": "track", "userId": "u1", "event": "B", "messageId": "b",
         "originalTimestamp": (device_now - dt.timedelta(seconds=60)).isoformat()},
        {"type": "track", "userId": "u1", "event": "C", "messageId": "c"},
    ]  # fmt: skip
    result = events_ingest(
        workspace=acme, items=[{**i, "sentAt": device_now.isoformat()} for i in items], received_at=received
    )
    assert result.stored == 3
    occurred = dict(Event.objects.values_list("message_id", "occurred_at"))
    assert occurred["a"] == received - dt.timedelta(seconds=30)
    assert occurred["b"] == received - dt.timedelta(seconds=60)  # originalTimestamp when no timestamp
    assert occurred["c"] == received  # no time given: when it arrived
    # Without sentAt the sender's time is taken as it is (a server-side import of history).
    events_ingest(
        workspace=acme, items=[{"type": "track", "userId": "u1", "event": "D", "messageId": "d",
                                "timestamp": "2020-02-29T12:00:00Z"}], received_at=received,
    )  # fmt: skip
    assert Event.objects.get(message_id="d").occurred_at == dt.datetime(2020, 2, 29, 12, tzinfo=dt.UTC)


# --- identity ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_identify_maps_standard_traits_and_types_custom_fields(acme: Workspace, acme_key: str) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    CustomField.objects.create(workspace=acme, key="vip", label="VIP", type=FieldType.BOOLEAN)
    CustomField.objects.create(workspace=acme, key="signup", label="Signed up", type=FieldType.DATE)
    CustomField.objects.create(workspace=acme, key="plan", label="Plan", type=FieldType.CHOICE, choices=["free", "pro"])
    traits = {
        "email": "Ann.Lee@Example.COM", "firstName": "Ann", "lastName": "Lee", "phone": "+49 30 1234",
        "birthday": "1990-05-17T00:00:00.000Z", "gender": "F",
        "address": {"city": "Berlin", "country": "de", "street": "Unter den Linden 1"},
        "timezone": "Europe/Berlin", "orders": "42", "vip": "yes", "signup": "2024-03-01", "plan": "pro",
        "favouriteColour": "teal", "company": {"name": "Initech"},
    }  # fmt: skip
    response = send("/v1/identify", {"userId": "cust-1", "traits": traits, "context": {"locale": "de-DE"}}, acme_key)
    assert response.status_code == 200, response.content
    ann = Contact.objects.get(workspace=acme)
    assert (ann.email, ann.external_id, ann.first_name, ann.last_name, ann.phone) == (
        "Ann.Lee@example.com", "cust-1", "Ann", "Lee", "+49 30 1234",
    )  # fmt: skip
    assert (ann.birth_date, ann.gender, ann.city, ann.country) == (dt.date(1990, 5, 17), "female", "Berlin", "DE")
    assert (ann.time_zone, ann.locale, ann.source) == ("Europe/Berlin", "de-DE", "events")
    assert ann.attributes == {
        "orders": 42, "vip": True, "signup": "2024-03-01", "plan": "pro",
        "favouriteColour": "teal", "company": {"name": "Initech"}, "address": {"street": "Unter den Linden 1"},
    }  # fmt: skip

    # Later identifies by userId alone update the same contact, field by field.
    send("/v1/identify", {"userId": "cust-1", "traits": {"orders": 43, "name": "Anna Maria Lee"}}, acme_key)
    ann.refresh_from_db()
    assert (ann.first_name, ann.last_name, ann.attributes["orders"], ann.phone) == (
        "Anna", "Maria Lee", 43, "+49 30 1234",
    )  # fmt: skip
    # Free text a standard field cannot hold stays an attribute rather than failing the call.
    send("/v1/identify", {"userId": "cust-1", "traits": {"address": {"country": "Germany"}, "gender": "?"}}, acme_key)
    ann.refresh_from_db()
    assert (ann.country, ann.gender) == ("DE", "female")
    assert ann.attributes["address"] == {"country": "Germany"} and ann.attributes["gender"] == "?"


@pytest.mark.django_db
def test_identify_with_bad_traits_is_refused(acme: Workspace, acme_key: str) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    response = send(
        "/v1/batch",
        {"batch": [
            {"type": "track", "userId": "u1", "event": "Fine"},
            {"type": "identify", "userId": "u1", "traits": {"email": "ann@example.com", "orders": "lots"}},
            {"type": "identify", "userId": "u2", "traits": {"email": "not-an-address", "phone": "1" * 41}},
        ]},
        acme_key,
    )  # fmt: skip
    assert response.status_code == 400
    assert error_of(response)["fields"] == {
        "batch.1.traits.orders": ["Expected a whole number, got 'lots'."],
        "batch.2.traits.email": ["'not-an-address' is not a valid email address."],
        "batch.2.traits.phone": ["At most 40 characters."],
    }
    assert error_of(response)["message"] == "Nothing was stored: 2 of 3 messages are not valid."
    assert not Contact.objects.exists() and not Event.objects.exists()


@pytest.mark.django_db
def test_anonymous_identify_keeps_its_traits_on_the_event(acme: Workspace, acme_key: str) -> None:
    send("/v1/identify", {"anonymousId": "a1", "traits": {"plan": "trial"}}, acme_key)
    assert not Contact.objects.exists()
    event = Event.objects.get()
    assert (event.contact_id, event.properties) == (None, {"plan": "trial"})


@pytest.mark.django_db
def test_track_finds_the_contact_by_user_id_email_or_alias(acme: Workspace, acme_key: str) -> None:
    ann, _ = contact_save(workspace=acme, data={"email": "ann@example.com", "external_id": "u-ann"})
    bob, _ = contact_save(workspace=acme, data={"email": "bob@example.com"})
    ContactAlias.objects.create(workspace=acme, contact=bob, alias="device-bob")
    batch = [
        {"type": "track", "userId": "u-ann", "event": "By user id", "messageId": "1"},
        {"type": "track", "anonymousId": "x", "event": "By email", "messageId": "2",
         "context": {"traits": {"email": "ANN@example.com"}}},
        {"type": "track", "anonymousId": "device-bob", "event": "By alias", "messageId": "3"},
        {"type": "track", "userId": "unknown", "event": "Nobody yet", "messageId": "4"},
    ]  # fmt: skip
    assert send("/v1/batch", {"batch": batch}, acme_key).status_code == 200
    owners = dict(Event.objects.values_list("message_id", "contact_id"))
    assert owners == {"1": ann.pk, "2": ann.pk, "3": bob.pk, "4": None}


@pytest.mark.django_db
def test_a_batch_that_creates_a_contact_links_its_other_messages(acme: Workspace, acme_key: str) -> None:
    batch = [
        {"type": "track", "anonymousId": "a1", "event": "Before", "messageId": "1"},
        {"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {"email": "new@example.com"},
         "messageId": "2"},
        {"type": "identify", "userId": "u1", "traits": {"firstName": "Nia"}, "messageId": "3"},
        {"type": "track", "userId": "u1", "event": "After", "messageId": "4"},
        {"type": "track", "anonymousId": "a1", "event": "Anonymous after", "messageId": "5"},
    ]  # fmt: skip
    assert send("/v1/batch", {"batch": batch}, acme_key).status_code == 200
    nia = Contact.objects.get(workspace=acme)
    assert (nia.email, nia.external_id, nia.first_name) == ("new@example.com", "u1", "Nia")
    owners = dict(Event.objects.values_list("message_id", "contact_id"))
    assert owners == {"1": nia.pk, "2": nia.pk, "3": nia.pk, "4": nia.pk, "5": nia.pk}


@pytest.mark.django_db
def test_anonymous_events_merge_into_the_contact_on_identify(
    acme: Workspace, acme_key: str, run_tasks_now: None, commit: Callable[..., Any]
) -> None:
    with commit():
        send("/v1/page", {"anonymousId": "a1", "name": "Home", "messageId": "p1"}, acme_key)
        send("/v1/track", {"anonymousId": "a1", "event": "Product Viewed", "messageId": "t1"}, acme_key)
        send("/v1/track", {"anonymousId": "other", "event": "Product Viewed", "messageId": "t2"}, acme_key)
        send("/v1/track", {"userId": "u1", "event": "Early", "messageId": "t3"}, acme_key)
    assert not Event.objects.filter(contact__isnull=False).exists()
    with commit():
        identify = {"anonymousId": "a1", "userId": "u1", "traits": {"email": "ann@example.com"}, "messageId": "i1"}
        assert send("/v1/identify", identify, acme_key).status_code == 200
    ann = Contact.objects.get(workspace=acme)
    owners = dict(Event.objects.values_list("message_id", "contact_id"))
    assert owners == {"p1": ann.pk, "t1": ann.pk, "t2": None, "t3": ann.pk, "i1": ann.pk}
    assert not PendingEvents.objects.exists()  # all processed
    with commit():
        send("/v1/track", {"anonymousId": "a1", "event": "Later", "messageId": "t4"}, acme_key)
    assert Event.objects.get(message_id="t4").contact_id == ann.pk  # linked at ingestion


@pytest.mark.django_db
def test_anonymous_events_merge_into_the_contact_on_alias(
    acme: Workspace, acme_key: str, run_tasks_now: None, commit: Callable[..., Any]
) -> None:
    ann, _ = contact_save(workspace=acme, data={"email": "ann@example.com", "external_id": "u1"})
    with commit():
        send("/v1/track", {"anonymousId": "a1", "event": "Browse", "messageId": "t1"}, acme_key)
        send("/v1/track", {"userId": "old-id", "event": "Old login", "messageId": "t2"}, acme_key)
    with commit():
        assert send("/v1/alias", {"previousId": "a1", "userId": "u1", "messageId": "al1"}, acme_key).status_code == 200
        send("/v1/alias", {"previousId": "old-id", "userId": "u1", "messageId": "al2"}, acme_key)
    owners = dict(Event.objects.values_list("message_id", "contact_id"))
    assert owners == {"t1": ann.pk, "t2": ann.pk, "al1": ann.pk, "al2": ann.pk}
    assert set(ContactAlias.objects.filter(contact=ann).values_list("alias", flat=True)) == {"a1", "old-id"}


@pytest.mark.django_db
def test_merge_follows_links_made_before_the_contact_existed(
    acme: Workspace, acme_key: str, run_tasks_now: None, commit: Callable[..., Any]
) -> None:
    """An identify without an email (nobody to create) links device a1 to u1; an alias links
    device a2 to u1; only later does u1 get an address. Everything then lands on the contact."""
    with commit():
        send("/v1/track", {"anonymousId": "a1", "event": "Browse", "messageId": "1"}, acme_key)
        send("/v1/identify", {"anonymousId": "a1", "userId": "u1", "messageId": "2"}, acme_key)
        send("/v1/track", {"anonymousId": "a2", "event": "Browse", "messageId": "3"}, acme_key)
        send("/v1/alias", {"previousId": "a2", "userId": "u1", "messageId": "4"}, acme_key)
    assert not Event.objects.filter(contact__isnull=False).exists()
    with commit():
        send("/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}, "messageId": "5"}, acme_key)
    contact = Contact.objects.get(workspace=acme)
    assert set(Event.objects.values_list("contact_id", flat=True)) == {contact.pk}
    assert set(ContactAlias.objects.values_list("alias", flat=True)) == {"a1", "a2"}


# --- processing: broker outage, sweeper ----------------------------------------------------


@pytest.mark.django_db
def test_with_the_broker_down_ingestion_answers_and_the_sweeper_catches_up(
    acme: Workspace, acme_key: str, monkeypatch: pytest.MonkeyPatch, commit: Callable[..., Any], run_tasks_now: None
) -> None:
    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("Error 111 connecting to redis. Connection refused.")

    with monkeypatch.context() as patch:
        patch.setattr(process_events, "apply_async", broker_down)
        with commit():
            send("/v1/track", {"anonymousId": "a1", "event": "Browse", "messageId": "1"}, acme_key)
            response = send(
                "/v1/identify", {"anonymousId": "a1", "userId": "u1", "traits": {"email": "a@example.com"}}, acme_key
            )
    assert response.status_code == 200
    assert Event.objects.count() == 2 and PendingEvents.objects.count() == 2
    assert Event.objects.get(message_id="1").contact_id is None  # not merged yet

    with commit():
        assert pipeline.pending_events_sweep() == []  # too young to be given up on
    later = timezone.now() + dt.timedelta(minutes=3)
    with commit():
        swept = pipeline.pending_events_sweep(now=later)  # the broker is back: tasks run
    assert len(swept) == 2
    assert not PendingEvents.objects.exists()
    assert Event.objects.get(message_id="1").contact_id == Contact.objects.get().pk


@pytest.mark.django_db
def test_a_task_takes_the_requests_waiting_behind_it(
    acme: Workspace, acme_key: str, monkeypatch: pytest.MonkeyPatch, commit: Callable[..., Any]
) -> None:
    sent: list[tuple[object, ...]] = []
    monkeypatch.setattr(process_events, "apply_async", lambda args: sent.append(tuple(args)))
    with commit():
        send("/v1/track", {"anonymousId": "a1", "event": "Browse", "messageId": "1"}, acme_key)
        send("/v1/identify", {"anonymousId": "a1", "userId": "u1", "traits": {"email": "a@example.com"}}, acme_key)
    failed_before = PendingEvents.objects.create(workspace=acme, event_ids=[], attempts=1)
    first, second = sent
    with commit():
        pipeline.pending_events_process(pending_id=first[0])  # type: ignore[arg-type]
    # Both requests done in one go (the identity merged across them); the row that failed
    # before is left to its own task.
    assert list(PendingEvents.objects.values_list("pk", flat=True)) == [failed_before.pk]
    assert Event.objects.get(message_id="1").contact_id == Contact.objects.get().pk
    with commit():
        pipeline.pending_events_process(pending_id=second[0])  # type: ignore[arg-type]  # finds nothing


@pytest.mark.django_db
def test_the_sweeper_backs_off_and_counts_attempts(
    acme: Workspace, monkeypatch: pytest.MonkeyPatch, commit: Callable[..., Any]
) -> None:
    sent: list[tuple[object, ...]] = []
    monkeypatch.setattr(process_events, "apply_async", lambda args: sent.append(tuple(args)))
    now = timezone.now()
    young = PendingEvents.objects.create(workspace=acme, event_ids=[1], created_at=now - dt.timedelta(minutes=1))
    old = PendingEvents.objects.create(workspace=acme, event_ids=[2], created_at=now - dt.timedelta(minutes=3))
    retried = PendingEvents.objects.create(
        workspace=acme, event_ids=[3], created_at=now - dt.timedelta(minutes=3), attempts=1
    )  # its next try is due 4 minutes after it was stored
    given_up = PendingEvents.objects.create(
        workspace=acme, event_ids=[4], created_at=now - dt.timedelta(days=1), attempts=pipeline.MAX_ATTEMPTS
    )
    with commit():
        assert pipeline.pending_events_sweep(now=now) == [old.pk]
    assert sent == [(old.pk,)]
    with commit():
        # 3.5 minutes old, sent once already: the next try waits until 4 minutes.
        assert pipeline.pending_events_sweep(now=now + dt.timedelta(seconds=30)) == []
    with commit():
        assert pipeline.pending_events_sweep(now=now + dt.timedelta(seconds=70)) == [young.pk, old.pk, retried.pk]
    attempts = dict(PendingEvents.objects.values_list("pk", "attempts"))
    assert attempts == {young.pk: 1, old.pk: 2, retried.pk: 2, given_up.pk: pipeline.MAX_ATTEMPTS}


@pytest.mark.django_db
def test_processing_twice_does_nothing_the_second_time(acme: Workspace, acme_key: str) -> None:
    send("/v1/track", {"userId": "u1", "event": "X"}, acme_key)
    pending = PendingEvents.objects.get()
    pipeline.pending_events_process(pending_id=pending.pk)
    pipeline.pending_events_process(pending_id=pending.pk)  # a duplicate task
    assert not PendingEvents.objects.exists()


@pytest.mark.django_db
def test_processing_refreshes_purchase_facts(
    acme: Workspace, acme_key: str, run_tasks_now: None, commit: Callable[..., Any]
) -> None:
    with commit():
        send("/v1/identify", {"userId": "u1", "traits": {"email": "buyer@example.com"}}, acme_key)
        order = {"userId": "u1", "event": "Order Completed", "properties": {"order_id": "o1", "total": 25}}
        send("/v1/track", order, acme_key)
    buyer = Contact.objects.get(workspace=acme)
    assert buyer.facts.orders_count == 1 and buyer.facts.revenue == 25


# --- isolation and GDPR --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_of_one_workspace_never_touches_another(
    acme: Workspace, globex: Workspace, acme_key: str, globex_key: str
) -> None:
    theirs, _ = contact_save(workspace=globex, data={"email": "ann@example.com", "external_id": "u1"})
    ContactAlias.objects.create(workspace=globex, contact=theirs, alias="a1")
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"email": "ann@example.com", "firstName": "Acme Ann"},
         "messageId": "same"},
        {"type": "track", "anonymousId": "a1", "event": "Browse", "messageId": "t1"},
        {"type": "alias", "previousId": "a1", "userId": "u1", "messageId": "al"},
    ]  # fmt: skip
    assert send("/v1/batch", {"batch": batch}, acme_key).status_code == 200
    ours = Contact.objects.get(workspace=acme)
    assert ours.pk != theirs.pk
    assert set(Event.objects.filter(workspace=acme).values_list("contact_id", flat=True)) == {ours.pk}
    theirs.refresh_from_db()
    assert theirs.first_name == "" and not Event.objects.filter(workspace=globex).exists()
    # The same messageId in another workspace is another event.
    assert send("/v1/track", {"userId": "u1", "event": "X", "messageId": "same"}, globex_key).status_code == 200
    assert Event.objects.get(workspace=globex).contact_id == theirs.pk
    assert ContactAlias.objects.get(workspace=globex).contact_id == theirs.pk


@pytest.mark.django_db
def test_gdpr_export_and_erase_cover_events(
    acme: Workspace, globex: Workspace, acme_key: str, globex_key: str, run_tasks_now: None, commit: Callable[..., Any]
) -> None:
    with commit():
        send("/v1/identify", {"userId": "u1", "anonymousId": "a1", "traits": {"email": "eve@example.com"}}, acme_key)
        send("/v1/track", {"userId": "u1", "event": "Order Completed", "properties": {"total": 5}}, acme_key)
        send("/v1/alias", {"previousId": "old-device", "userId": "u1"}, acme_key)
    eve = Contact.objects.get(workspace=acme)
    # Unlinked events under her ids: stored before a link, left by a merge that never ran.
    Event.objects.create(workspace=acme, type="track", name="Stray", user_id="u1", message_id="s1",
                         occurred_at=timezone.now())  # fmt: skip
    Event.objects.create(workspace=acme, type="page", name="Stray", anonymous_id="old-device", message_id="s2",
                         occurred_at=timezone.now())  # fmt: skip
    send("/v1/track", {"userId": "u1", "event": "Not Eve", "messageId": "g1"}, globex_key)

    export = gdpr.contact_export(workspace=acme, contact_id=eve.pk)
    assert sorted(e["name"] for e in export["events"]) == ["", "", "Order Completed", "Stray", "Stray"]
    assert sorted(export["aliases"]) == ["a1", "old-device"]
    assert {e["type"] for e in export["events"]} == {"identify", "track", "alias", "page"}

    gdpr.contact_erase(workspace=acme, contact_id=eve.pk)
    assert not Event.objects.filter(workspace=acme).exists()
    assert not ContactAlias.objects.filter(workspace=acme).exists()
    assert Event.objects.filter(workspace=globex).count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audiences_event WHERE properties::text LIKE '%eve@example.com%'")
        assert cursor.fetchone()[0] == 0
