"""The simulated shop of `make run`: its visits are valid for the tracking API (stored, merged
into contacts, a cart's order carrying the cart), it outlives a server that is not up yet, it
speaks HTTP as a Segment SDK does, and DEMO_SHOP_SIMULATION=0 leaves it out."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from audiences.demo_live import Customer, Shop, post_batch, run, visit_messages
from audiences.models import Contact, Event, PendingEvents
from audiences.pipeline import pending_events_process
from esp.embedded import demo_shop_command
from esp.models import ApiScope, Workspace
from tests.factories import api_key


def _shop(workspace: Workspace, seed: int = 7) -> Shop:
    customers = []
    for n in range(5):
        person = Contact.objects.create(workspace=workspace, email=f"c{n}@acme.test", external_id=f"cust-{n}")
        customers.append(Customer(person.external_id, person.email, "Ann", "bg" if n % 2 else "en"))
    return Shop(customers=customers, rng=random.Random(seed))  # noqa: S311 — repeatable, not a secret


def test_visits_are_accepted_by_the_tracking_api(acme: Workspace) -> None:
    shop = _shop(acme)
    key = api_key(acme, [ApiScope.EVENTS_WRITE])
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    client = Client()
    checked_out: set[str] = set()
    returned = 0
    for _visit in range(60):
        messages = visit_messages(shop, dt.datetime.now(dt.UTC))
        carts = {m["properties"]["cart_id"] for m in messages if m.get("event") == "Checkout Started"}
        ordered = {m["properties"]["cart_id"] for m in messages if m.get("event") == "Order Completed"}
        returned += len((ordered - carts) & checked_out)  # back in a later visit for a cart left
        checked_out |= carts
        response = client.post(
            "/v1/batch", data=json.dumps({"batch": messages}), content_type="application/json", HTTP_AUTHORIZATION=auth
        )
        assert response.status_code == 200, response.content
    for pending_id in PendingEvents.objects.filter(workspace=acme).values_list("pk", flat=True):
        pending_events_process(pending_id=pending_id)

    events = Event.objects.filter(workspace=acme)
    names = set(events.values_list("name", flat=True))
    assert {"Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Signed Up"} <= names
    assert not events.filter(contact__isnull=True).exists()  # every message names its customer
    carts = set(events.filter(name="Checkout Started").values_list("properties__cart_id", flat=True))
    orders = list(events.filter(name="Order Completed").values_list("properties", flat=True))
    assert orders and all(order["cart_id"] in carts and order["products"] for order in orders)
    # An order of a cart left in an earlier visit: the abandoned cart's keyed goal.
    assert (
        any(
            events.filter(name="Checkout Started", properties__cart_id=order["cart_id"]).first().occurred_at
            < events.filter(name="Order Completed", properties__cart_id=order["cart_id"]).first().occurred_at
            for order in orders
        )
        or shop.open_carts
    )
    newcomers = Contact.objects.filter(workspace=acme, external_id__startswith="sim-")
    assert newcomers.count() == shop.newcomers > 0 and not newcomers.filter(email="").exists()
    # Some views are of expensive products: the considered-purchase series' trigger.
    assert events.filter(name="Product Viewed", properties__price__gte=100).exists()


def test_the_loop_waits_for_a_server_that_is_not_up_yet(acme: Workspace) -> None:
    shop = _shop(acme)
    calls: list[list[dict[str, Any]]] = []

    def send(base_url: str, key: str, messages: list[dict[str, Any]]) -> int:
        calls.append(messages)
        if len(calls) == 1:
            raise ConnectionRefusedError("not yet")
        return 200

    run(shop, base_url="http://shop.test", write_key="k", every=0, send=send, stop=lambda: len(calls) >= 3)
    assert len(calls) == 3 and all(calls)


class _Sink(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Sink.seen.append((self.path, self.headers["Authorization"], body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"success":true}')

    def log_message(self, *args: Any) -> None:
        pass


def test_post_batch_speaks_as_a_segment_sdk() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        status = post_batch(f"http://127.0.0.1:{server.server_port}/", "esk_secret", [{"type": "track"}])
    finally:
        thread.join(5)
        server.server_close()
    assert status == 200
    path, authorization, body = _Sink.seen[-1]
    assert path == "/v1/batch" and body["batch"] == [{"type": "track"}]
    assert base64.b64decode(authorization.removeprefix("Basic ")).decode() == "esk_secret:"


@pytest.mark.parametrize(("value", "on"), [(None, True), ("1", True), ("0", False), ("off", False), ("false", False)])
def test_the_switch(value: str | None, on: bool) -> None:
    environ = {} if value is None else {"DEMO_SHOP_SIMULATION": value}
    command = demo_shop_command("http://127.0.0.1:8000", environ)
    assert (command is not None) == on
    if command is not None:
        assert "simulate_shop" in command and "http://127.0.0.1:8000" in command


def test_the_command_needs_the_demo(db: None, tmp_path: Any, settings: Any) -> None:
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError):
        call_command("simulate_shop")
