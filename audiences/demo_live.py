"""A small simulated shop for `make run`: every few seconds a visit of a demo customer (or of a
newcomer who signs up) is sent to the PUBLIC tracking API over HTTP with the demo workspace's
write key, the way a shop's backend or a Segment SDK sends it — so a newcomer watching the
pages sees contacts enter series, carts get reminded and orders convert, live.

A visit is one of: browsing (products viewed, now and then an expensive one), a cart left at
checkout, an order (sometimes of a cart left earlier, which converts its reminder), a newcomer
signing up. `visit_messages` builds the Segment messages of one visit from a random generator
and is pure, so the tests check the payloads against the real endpoint; `run` is the loop.

Started by the launcher (esp/embedded.py) beside web, worker and beat; DEMO_SHOP_SIMULATION=0
leaves it out.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from audiences.demo_shop import CATALOGUE, COFFEE, SITE, _product

logger = logging.getLogger(__name__)

LIBRARY = {"name": "mini-esp-demo-shop", "version": "1.0"}
# Open carts remembered for a later order (the abandoned cart's keyed goal).
MAX_OPEN_CARTS = 50
EXPENSIVE = [p.sku for p in CATALOGUE.values() if p.price >= 100]
EVERYDAY = [p.sku for p in CATALOGUE.values() if p.price < 100 and p.sku != COFFEE]


@dataclass(frozen=True)
class Customer:
    user_id: str
    email: str
    first_name: str = ""
    locale: str = "en"


@dataclass
class Shop:
    """What the simulated shop remembers between visits: its customers and the carts left."""

    customers: list[Customer]
    rng: random.Random
    open_carts: list[tuple[Customer, dict[str, Any]]] = field(default_factory=list)
    newcomers: int = 0


def _message(kind: str, customer: Customer, at: dt.datetime, **body: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "messageId": f"sim-{uuid.uuid4()}",
        "userId": customer.user_id,
        "timestamp": at.isoformat(),
        "context": {"library": LIBRARY, "locale": {"bg": "bg-BG", "ru": "ru-RU"}.get(customer.locale, "en-GB")},
        **body,
    }


def _track(customer: Customer, at: dt.datetime, event: str, properties: dict[str, Any]) -> dict[str, Any]:
    return _message("track", customer, at, event=event, properties=properties)


def _cart(shop: Shop, customer: Customer, at: dt.datetime, skus: list[str]) -> tuple[list[dict[str, Any]], dict]:
    """Products viewed and added, then the checkout: the messages and the cart."""
    cart_id = f"sim-cart-{uuid.uuid4().hex[:12]}"
    products = [_product(sku, customer.locale, quantity=1) for sku in skus]
    messages = []
    for product in products:
        messages.append(_track(customer, at, "Product Viewed", product))
        messages.append(_track(customer, at, "Product Added", {**product, "cart_id": cart_id}))
    total = sum(Decimal(str(p["price"])) for p in products)
    cart = {
        "cart_id": cart_id,
        "products": products,
        "value": float(total),
        "currency": "EUR",
        "checkout_url": f"{SITE}/cart/{cart_id}",
    }
    messages.append(_track(customer, at, "Checkout Started", cart))
    return messages, cart


def _order(customer: Customer, at: dt.datetime, cart: dict[str, Any]) -> dict[str, Any]:
    total = Decimal(str(cart["value"]))
    shipping = Decimal("0.00") if total >= 50 else Decimal("4.90")
    return _track(
        customer,
        at,
        "Order Completed",
        {
            "order_id": f"SIM-{uuid.uuid4().hex[:8].upper()}",
            "cart_id": cart["cart_id"],
            "total": float(total + shipping),
            "revenue": float(total),
            "shipping": float(shipping),
            "currency": "EUR",
            "products": cart["products"],
        },
    )


def visit_messages(shop: Shop, at: dt.datetime) -> list[dict[str, Any]]:
    """The Segment messages of the shop's next visit."""
    rng = shop.rng
    roll = rng.random()
    if roll < 0.12 or not shop.customers:
        return _newcomer(shop, at)
    customer = rng.choice(shop.customers)
    if roll < 0.45:
        skus = rng.sample(EVERYDAY, rng.randint(1, 3))
        if rng.random() < 0.3:
            skus.append(rng.choice(EXPENSIVE))
        return [_track(customer, at, "Product Viewed", _product(sku, customer.locale)) for sku in skus]
    if roll < 0.65 and shop.open_carts:
        # Back for a cart left earlier: its order ends that cart's reminders.
        customer, cart = shop.open_carts.pop(rng.randrange(len(shop.open_carts)))
        return [_order(customer, at, cart)]
    messages, cart = _cart(shop, customer, at, rng.sample(EVERYDAY, rng.randint(1, 2)))
    if roll < 0.85:
        shop.open_carts.append((customer, cart))
        del shop.open_carts[:-MAX_OPEN_CARTS]
    else:
        messages.append(_order(customer, at, cart))
    return messages


def _newcomer(shop: Shop, at: dt.datetime) -> list[dict[str, Any]]:
    shop.newcomers += 1
    token = uuid.uuid4().hex[:8]
    first = shop.rng.choice(["Mila", "Teo", "Iva", "Leo", "Nora", "Sam"])
    customer = Customer(f"sim-{token}", f"{first.lower()}.{token}@example.com", first)
    shop.customers.append(customer)
    return [
        _message("identify", customer, at, traits={"email": customer.email, "firstName": first}),
        _track(customer, at, "Signed Up", {"method": "email"}),
        _track(customer, at, "Product Viewed", _product(shop.rng.choice(EVERYDAY), customer.locale)),
    ]


def post_batch(base_url: str, write_key: str, messages: list[dict[str, Any]], timeout: float = 10) -> int:
    """POST /v1/batch as a Segment SDK does (HTTP Basic, the key as user name); the status."""
    request = urllib.request.Request(  # noqa: S310 — the operator's own server, http(s) by configuration
        f"{base_url.rstrip('/')}/v1/batch",
        data=json.dumps({"batch": messages, "sentAt": dt.datetime.now(dt.UTC).isoformat()}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 — see above
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def run(
    shop: Shop,
    *,
    base_url: str,
    write_key: str,
    every: float,
    send: Callable[[str, str, list[dict[str, Any]]], int] = post_batch,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """A visit every `every` seconds until `stop()`; a server not up yet (or restarting) is
    waited for, never a reason to stop."""
    while not stop():
        messages = visit_messages(shop, dt.datetime.now(dt.UTC))
        try:
            status = send(base_url, write_key, messages)
        except OSError as error:
            logger.info("demo shop: the server does not answer yet (%s)", error)
        else:
            if status != 200:
                logger.warning("demo shop: the tracking API answered %s", status)
            else:
                logger.info("demo shop: %s", ", ".join(m.get("event", m["type"]) for m in messages))
        time.sleep(every)
