"""The tracking API driven by the real Segment SDK (`segment-analytics-python`) with its host set
to the live test server, as a shop backend would use it; and replays of one messageId sent
at the same moment from several connections."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.db import connection
from segment.analytics import Client
from segment.analytics import request as segment_request
from segment.analytics.request import APIError

from audiences.models import Contact, ContactAlias, CustomField, Event, FieldType, PendingEvents
from esp.models import Workspace
from tests.factories import api_key


@pytest.fixture
def acme_key(acme: Workspace) -> str:
    return api_key(acme, scopes=["events:write"])


@pytest.fixture(autouse=True)
def _sdk_connections_closed() -> Iterator[None]:
    """The SDK keeps its HTTP connections open (one requests.Session for the process), and the
    live server's thread for such a connection keeps its database connection until the socket
    closes: close them, so that the test database can be dropped."""
    yield
    segment_request._session.close()
    _wait_for_server_connections_to_close()


@pytest.fixture
def sdk(live_server: Any, acme_key: str) -> Client:
    """The SDK in sync mode: each call is one POST /v1/batch, and errors raise."""
    return Client(write_key=acme_key, host=live_server.url, sync_mode=True, max_retries=0)


@pytest.mark.django_db(transaction=True)
def test_the_sdk_sends_every_call(sdk: Client, acme: Workspace) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    when = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
    sdk.track(anonymous_id="device-1", event="Product Viewed", properties={"sku": "A-1"}, message_id="t0")
    sdk.page(anonymous_id="device-1", category="Shop", name="Shoes", properties={"path": "/shoes"}, message_id="p1")
    sdk.identify(
        user_id="cust-1",
        anonymous_id="device-1",
        traits={"email": "ann@example.com", "firstName": "Ann", "orders": "3"},
        message_id="i1",
    )
    sdk.track(
        user_id="cust-1",
        event="Order Completed",
        properties={"order_id": "o-1", "total": 49.9, "products": [{"sku": "A-1", "price": 49.9, "quantity": 1}]},
        timestamp=when,
        message_id="t1",
    )
    sdk.screen(user_id="cust-1", name="Checkout", message_id="s1")
    sdk.group(user_id="cust-1", group_id="company-9", traits={"name": "Initech"}, message_id="g1")
    sdk.alias(previous_id="device-2", user_id="cust-1", message_id="a1")
    sdk.track(user_id=1234, event="Numeric Id", message_id="n1")  # the SDK stringifies numbers

    ann = Contact.objects.get(workspace=acme)
    assert (ann.email, ann.external_id, ann.first_name, ann.attributes) == (
        "ann@example.com", "cust-1", "Ann", {"orders": 3},
    )  # fmt: skip
    events = {e.message_id: e for e in Event.objects.filter(workspace=acme)}
    assert {m: e.type for m, e in events.items()} == {
        "t0": "track", "p1": "page", "i1": "identify", "t1": "track", "s1": "screen", "g1": "group", "a1": "alias",
        "n1": "track",
    }  # fmt: skip
    order = events["t1"]
    assert (order.contact_id, order.name, order.properties["total"]) == (ann.pk, "Order Completed", 49.9)
    # The SDK stamps sentAt when it posts: the correction only moves the time by the network delay.
    assert abs(order.occurred_at - when) < dt.timedelta(seconds=5)
    assert order.context["library"]["name"] == "analytics-python"
    assert events["p1"].properties == {"path": "/shoes", "category": "Shop"} and events["p1"].name == "Shoes"
    assert events["n1"].user_id == "1234"
    assert {e.contact_id for m, e in events.items() if m in ("i1", "s1", "g1", "a1")} == {ann.pk}
    assert set(ContactAlias.objects.filter(contact=ann).values_list("alias", flat=True)) == {"device-1", "device-2"}


@pytest.mark.django_db(transaction=True)
def test_the_sdk_gzips_and_batches(live_server: Any, acme_key: str, acme: Workspace) -> None:
    client = Client(write_key=acme_key, host=live_server.url, gzip=True, upload_size=100, max_retries=0)
    for n in range(250):
        client.track(user_id=f"u{n % 10}", event="Viewed", properties={"n": n}, message_id=f"m{n}")
    client.flush()
    client.join()
    assert Event.objects.filter(workspace=acme).count() == 250
    assert PendingEvents.objects.filter(workspace=acme).count() >= 3  # one per batch request


@pytest.mark.django_db(transaction=True)
def test_the_sdk_sees_our_errors(live_server: Any, acme: Workspace) -> None:
    stranger = Client(write_key="esk_unknown_key", host=live_server.url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as refused:
        stranger.track(user_id="u1", event="X")
    assert refused.value.status == 401
    assert "This API key is unknown or has been revoked." in refused.value.message
    reader = Client(
        write_key=api_key(acme, scopes=["contacts:read"]), host=live_server.url, sync_mode=True, max_retries=0
    )
    with pytest.raises(APIError) as forbidden:
        reader.identify(user_id="u1", traits={"email": "x@example.com"})
    assert forbidden.value.status == 403
    assert not Event.objects.exists()


def _post(url: str, key: str, body: bytes) -> int:
    response = requests.post(url, data=body, auth=(key, ""), headers={"Content-Type": "application/json"}, timeout=30)
    return int(response.status_code)


def _wait_for_server_connections_to_close() -> None:
    """The live server closes each request thread's connection just after answering; a test
    database dropped at that moment would still be in use."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("endpoint", ["track", "identify"])
def test_the_same_message_id_sent_concurrently_is_stored_once(
    live_server: Any, acme_key: str, acme: Workspace, endpoint: str
) -> None:
    message = {"userId": "u1", "messageId": "once", "event": "Order Completed", "properties": {"total": 5}}
    if endpoint == "identify":
        message = {"userId": "u1", "messageId": "once", "traits": {"email": "same@example.com"}}
    body = json.dumps(message).encode()
    threads = 6
    start = threading.Barrier(threads)
    statuses: list[int] = []

    def send() -> None:
        start.wait()
        statuses.append(_post(f"{live_server.url}/v1/{endpoint}", acme_key, body))

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert statuses == [200] * threads
    assert Event.objects.filter(workspace=acme, message_id="once").count() == 1
    # Processing is handed on once: only the request that inserted the row wrote a pending row.
    pending = list(PendingEvents.objects.filter(workspace=acme))
    assert len(pending) == 1 and pending[0].event_ids == [Event.objects.get().pk]
    if endpoint == "identify":
        assert Contact.objects.filter(workspace=acme).count() == 1
