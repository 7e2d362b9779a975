"""The demo shop's history, seeded after its audience (audiences.demo): eighteen months of what
the 240 demo customers did in the shop — page views, products viewed and added, carts,
checkouts, orders with their products, a few refunds, abandoned carts, anonymous browsing
that an identify later ties to the customer, and a few visitors who never signed up.

It goes the way a shop's events go: through the tracking API's service (audiences.ingest),
then the pipeline (identity merge, purchase facts), RFM scores and lifecycle stages, and the
demo segments. Each customer's history comes from a random generator seeded by their
external id, and every messageId is derived from it, so a second run stores nothing twice
(and is skipped outright when the last event is there already)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from audiences.facts import insight_figures_refresh, lifecycle_refresh, rfm_score
from audiences.ingest import events_ingest
from audiences.models import Contact, Event, Segment
from audiences.pipeline import pending_events_process
from audiences.segments.membership import segment_refresh
from audiences.segments.services import segment_save
from esp.mail import public_static_url
from esp.models import Workspace

HISTORY_DAYS = 540  # about eighteen months
CHUNK = 500  # messages per ingest call: a full SDK batch (the 500 KB cap allows ~1 KB a message)
SITE = "https://demo.shop"
ANONYMOUS_VISITORS = 25

# sku | category | price in EUR | name in English | Bulgarian | Russian
CATALOGUE_TABLE = """
sku-101 | Running |  89.90 | Trail running shoes        | Обувки за планинско бягане | Кроссовки для трейла
sku-102 | Running |  14.90 | Running socks, 3 pairs     | Чорапи за бягане, 3 чифта  | Беговые носки, 3 пары
sku-103 | Running |  59.00 | Lightweight running jacket | Леко яке за бягане         | Лёгкая беговая куртка
sku-104 | Running |  45.50 | Hydration vest             | Жилетка за хидратация      | Жилет-гидратор
sku-201 | Hiking  |  39.90 | Trekking poles             | Щеки за трекинг            | Треккинговые палки
sku-202 | Hiking  | 149.00 | Two-person tent            | Палатка за двама           | Двухместная палатка
sku-203 | Hiking  |  79.00 | Sleeping bag               | Спален чувал               | Спальный мешок
sku-204 | Hiking  |  24.90 | Headlamp                   | Челник                     | Налобный фонарь
sku-301 | Kids    |  34.90 | Kids' rain jacket          | Детско яке за дъжд         | Детская дождевая куртка
sku-302 | Kids    |  42.00 | Kids' sneakers             | Детски маратонки           | Детские кроссовки
sku-401 | Home    |  54.00 | Wool blanket               | Вълнено одеяло             | Шерстяной плед
sku-402 | Home    |  22.50 | Ceramic mug set            | Комплект керамични чаши    | Набор керамических кружек
sku-403 | Home    |  12.90 | Scented candle             | Ароматна свещ              | Ароматическая свеча
sku-404 | Home    |  18.90 | Coffee beans, 1 kg         | Кафе на зърна, 1 кг        | Кофе в зёрнах, 1 кг
sku-501 | Tech    |  69.00 | Wireless earbuds           | Безжични слушалки          | Беспроводные наушники
sku-502 | Tech    |  29.90 | Power bank 20,000 mAh      | Външна батерия 20 000 mAh  | Внешний аккумулятор 20 000 мАч
sku-503 | Tech    | 129.00 | GPS sports watch           | Спортен GPS часовник       | Спортивные GPS-часы
"""


@dataclass(frozen=True)
class Product:
    sku: str
    category: str
    price: Decimal
    names: dict[str, str]


CATALOGUE = {
    cells[0]: Product(cells[0], cells[1], Decimal(cells[2]), dict(zip(("en", "bg", "ru"), cells[3:], strict=True)))
    for cells in ([cell.strip() for cell in line.split("|")] for line in CATALOGUE_TABLE.strip().splitlines())
}
COFFEE = "sku-404"  # the replenishment product: its buyers come back every few weeks
INTEREST_CATEGORY = {"running": "Running", "hiking": "Hiking", "fashion": "Kids", "home": "Home", "tech": "Tech"}
WEB = {"name": "analytics.js", "version": "4.1.0"}
APP = {"name": "analytics-ios", "version": "4.1.8"}
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0",
]

# Customers with these many orders over the history, by kind (weights sum to 1).
PERSONAS = [("browser", 0.22), ("one_time", 0.33), ("repeat", 0.25), ("loyal", 0.13), ("lapsed", 0.07)]


@dataclass
class _History:
    """One person's messages, in the order they happened."""

    key: str  # messageIds are f"demo-{key}-{n}"
    user_id: str
    locale: str
    rng: random.Random
    messages: list[dict[str, Any]] = field(default_factory=list)
    late: set[str] = field(default_factory=set)  # messageIds that arrive hours after they happened

    def add(self, kind: str, at: datetime, context: dict[str, Any], *, anonymous_id: str = "", **body: Any) -> None:
        message_id = f"demo-{self.key}-{len(self.messages)}"
        message = {"type": kind, "messageId": message_id, "timestamp": at.isoformat(), "context": context, **body}
        if self.user_id and not anonymous_id:
            message["userId"] = self.user_id
        if anonymous_id:
            message["anonymousId"] = anonymous_id
        self.messages.append(message)


def _product(sku: str, locale: str, quantity: int = 1) -> dict[str, Any]:
    """A product as the e-commerce spec's events carry it, named in the customer's language."""
    product = CATALOGUE[sku]
    return {
        "product_id": sku,
        "sku": sku.upper(),
        "name": product.names.get(locale, product.names["en"]),
        "category": product.category,
        "price": float(product.price),
        "quantity": quantity,
        "currency": "EUR",
        "url": f"{SITE}/p/{sku}",
        # Served by this site: the demo's mail must not wait on an outside image host.
        "image_url": public_static_url(f"img/products/{product.category.lower()}.svg"),
    }


def _pick(rng: random.Random, category: str, k: int) -> list[str]:
    """k products, mostly from the person's favourite category."""
    favourites = [p.sku for p in CATALOGUE.values() if p.category == category and p.sku != COFFEE]
    others = [p.sku for p in CATALOGUE.values() if p.category != category and p.sku != COFFEE]
    picked: list[str] = []
    while len(picked) < k:
        sku = rng.choice(favourites if rng.random() < 0.7 else others)
        if sku not in picked:
            picked.append(sku)
    return picked


def _context(history: _History, app: bool) -> dict[str, Any]:
    rng = history.rng
    context: dict[str, Any] = {
        "ip": f"203.0.113.{rng.randint(1, 254)}",
        "library": APP if app else WEB,
        "locale": {"bg": "bg-BG", "ru": "ru-RU"}.get(history.locale, "en-GB"),
    }
    if app:
        context["app"] = {"name": "Demo Shop", "version": "3.2.0"}
        context["device"] = {"type": "ios", "model": "iPhone15,2"}
    else:
        context["userAgent"] = rng.choice(BROWSERS)
    return context


def _visit(
    history: _History,
    start: datetime,
    category: str,
    *,
    order: str = "",
    abandon: bool = False,
    anonymous_id: str = "",
    always: tuple[str, ...] = (),
) -> datetime:
    """One visit: pages and products; then, for an order, cart, checkout and the order; for an
    abandoned cart, the cart and maybe the checkout. Returns when the visit ended."""
    rng, locale = history.rng, history.locale
    app = rng.random() < 0.25
    context = _context(history, app)
    at = start
    page_kind = "screen" if app else "page"

    def step(minutes: float) -> datetime:
        nonlocal at
        at += timedelta(minutes=minutes, seconds=rng.randint(0, 59))
        return at

    first = len(history.messages)
    history.add(
        page_kind,
        at,
        context,
        anonymous_id=anonymous_id,
        name="Home",
        properties={"url": f"{SITE}/", "path": "/", "title": "Demo Shop"},
    )
    history.add(
        page_kind,
        step(1),
        context,
        anonymous_id=anonymous_id,
        name="Category",
        properties={
            "category": category,
            "title": f"{category} · Demo Shop",
            "url": f"{SITE}/c/{category.lower()}",
            "path": f"/c/{category.lower()}",
        },
    )
    buying = _pick(rng, category, rng.randint(1, 3)) if (order or abandon) else []
    looked = buying + [sku for sku in _pick(rng, category, rng.randint(1, 3)) if sku not in buying]
    if order:
        buying += [sku for sku in always if sku not in buying]
    for sku in looked:
        history.add(
            "track",
            step(rng.uniform(0.5, 4)),
            context,
            anonymous_id=anonymous_id,
            event="Product Viewed",
            properties=_product(sku, locale),
        )
    if not buying:
        return at
    cart_id = f"cart-{history.key}-{first}"
    products = [_product(sku, locale, quantity=1 if rng.random() < 0.8 else 2) for sku in buying]
    for product in products:
        history.add(
            "track",
            step(rng.uniform(0.3, 2)),
            context,
            anonymous_id=anonymous_id,
            event="Product Added",
            properties={**product, "cart_id": cart_id},
        )
    total = sum(Decimal(str(p["price"])) * p["quantity"] for p in products)
    cart = {"cart_id": cart_id, "products": products, "value": float(total), "currency": "EUR"}
    history.add("track", step(1), context, anonymous_id=anonymous_id, event="Cart Viewed", properties=cart)
    if abandon and rng.random() < 0.5:
        return at
    history.add(
        "track",
        step(2),
        context,
        anonymous_id=anonymous_id,
        event="Checkout Started",
        properties={**cart, "order_id": order or f"pending-{cart_id}"},
    )
    if abandon:
        return at
    shipping = Decimal("0.00") if total >= 50 else Decimal("4.90")
    history.add(
        "track",
        step(rng.uniform(2, 6)),
        context,
        anonymous_id=anonymous_id,
        event="Order Completed",
        properties={
            "order_id": order,
            "checkout_id": f"chk-{cart_id}",
            "cart_id": cart_id,
            "total": float(total + shipping),
            "revenue": float(total),
            "shipping": float(shipping),
            "tax": float((total / Decimal("6")).quantize(Decimal("0.01"))),  # 20 % VAT included
            "currency": "EUR",
            "products": products,
        },
    )
    if app and rng.random() < 0.15:
        # The phone was offline: this visit reached the shop's backend hours later.
        history.late.update(m["messageId"] for m in history.messages[first:])
    return at


def _order_times(rng: random.Random, persona: str, now: datetime, since: datetime) -> list[datetime]:
    day = timedelta(days=1)
    if persona == "browser":
        return []
    if persona == "one_time":
        return [since + day * rng.uniform(0, max(1, (now - since).days - 1))]
    if persona == "loyal":
        interval = rng.uniform(18, 40)
        last = now - day * rng.uniform(0.5, 25)
        count = rng.randint(5, 12)
        times = [last - day * (interval * n + rng.uniform(-4, 4)) for n in range(count)]
    elif persona == "lapsed":
        interval = rng.uniform(25, 50)
        last = now - day * rng.uniform(200, 330)
        times = [last - day * (interval * n + rng.uniform(-5, 5)) for n in range(rng.randint(4, 8))]
    else:  # repeat
        times = [since + day * rng.uniform(0, max(1, (now - since).days - 1)) for _ in range(rng.randint(2, 4))]
    return sorted(t for t in times if t > now - day * HISTORY_DAYS)


def _customer_history(contact: Contact, now: datetime) -> _History:
    rng = random.Random(f"demo-shop-{contact.external_id}")  # noqa: S311 — repeatable demo data
    number = contact.external_id.removeprefix("cust-")
    history = _History(key=f"c{number}", user_id=contact.external_id, locale=contact.locale or "en", rng=rng)
    persona = rng.choices([p for p, _w in PERSONAS], [w for _p, w in PERSONAS])[0]
    interest = (contact.attributes or {}).get("interests", "")
    category = INTEREST_CATEGORY.get(interest, rng.choice(list(INTEREST_CATEGORY.values())))
    since = now - timedelta(days=rng.uniform(30, HISTORY_DAYS - 5))
    orders = _order_times(rng, persona, now, since)
    first_seen = min([since, *orders])
    browse_count = rng.randint(1, 4) + (2 if persona == "browser" else 0)
    browse = [first_seen + timedelta(days=rng.uniform(0, max(1, (now - first_seen).days))) for _ in range(browse_count)]
    if persona == "lapsed" and orders:
        browse = [t for t in browse if t < orders[-1] + timedelta(days=30)] or browse[:1]

    # About one in six first came as an anonymous visitor and signed up on a later visit.
    anonymous = rng.random() < 0.17
    # A visit takes up to an hour: none starts so late that it would end in the future.
    latest = now - timedelta(hours=2)
    visits = sorted([(min(t, latest), "order") for t in orders] + [(min(t, latest), "browse") for t in browse])
    if anonymous:
        anonymous_id = f"anon-{contact.external_id}-{rng.getrandbits(32):08x}"
        start = visits[0][0] - timedelta(days=rng.uniform(1.5, 20))
        end = _visit(history, start, category, anonymous_id=anonymous_id)
        signed_up = end + timedelta(days=rng.uniform(0.01, 1))  # before the next visit
        context = _context(history, app=False)
        del context["locale"]  # the contact's own locale stays as it is
        history.add(
            "identify",
            signed_up,
            context,
            traits={"email": contact.email, "firstName": contact.first_name, "lastName": contact.last_name},
        )
        history.messages[-1]["anonymousId"] = anonymous_id
        history.add(
            "track",
            signed_up + timedelta(seconds=5),
            _context(history, app=False),
            event="Signed Up",
            properties={"method": "email"},
        )
    # Half of the loyal customers come back for coffee beans: the replenishment prediction's case.
    always = (COFFEE,) if persona == "loyal" and rng.random() < 0.5 else ()
    order_number = 0
    for at, kind in visits:
        if kind == "order":
            order_number += 1
            order_id = f"DS-{number}-{order_number:02d}"
            _visit(history, at, category, order=order_id, always=always)
            if rng.random() < 0.06:  # a refund a week or two later
                completed = history.messages[-1]["properties"]
                refund_at = at + timedelta(days=rng.uniform(3, 14))
                if refund_at < now:
                    history.add(
                        "track",
                        refund_at,
                        _context(history, app=False),
                        event="Order Refunded",
                        properties={"order_id": order_id, "total": completed["total"], "currency": "EUR"},
                    )
        else:
            _visit(history, at, category, abandon=rng.random() < 0.35)
    return history


def _anonymous_visitor(number: int, now: datetime) -> _History:
    """Someone who browsed and never signed up: their events stay without a contact."""
    rng = random.Random(f"demo-shop-visitor-{number}")  # noqa: S311 — repeatable demo data
    history = _History(key=f"v{number}", user_id="", locale=rng.choice(["bg", "bg", "ru", "en"]), rng=rng)
    anonymous_id = f"anon-visitor-{number}-{rng.getrandbits(32):08x}"
    category = rng.choice(list(INTEREST_CATEGORY.values()))
    for _ in range(rng.randint(1, 3)):
        _visit(
            history,
            now - timedelta(days=rng.uniform(0.2, 120)),
            category,
            anonymous_id=anonymous_id,
            abandon=rng.random() < 0.2,
        )
    return history


def _histories(workspace: Workspace, now: datetime) -> Iterator[_History]:
    contacts = (
        Contact.objects.in_workspace(workspace)
        .filter(external_id__startswith="cust-", source__in=["import", "api"])
        .order_by("external_id")
    )
    for contact in contacts:
        yield _customer_history(contact, now)
    for number in range(ANONYMOUS_VISITORS):
        yield _anonymous_visitor(number, now)


DEMO_SEGMENTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "Bulgarian customers with 2+ orders in 90 days",
        "Frequent buyers in Bulgaria: thank them, or offer early access.",
        {
            "match": "all",
            "conditions": [
                {"kind": "attribute", "field": "country", "operator": "eq", "value": "BG"},
                {
                    "kind": "event",
                    "did": True,
                    "name": "Order Completed",
                    "count_operator": "gte",
                    "count": 2,
                    "period": "in_last_days",
                    "days": 90,
                },
            ],
        },
    ),
    (
        "Browsed but never bought",
        "Viewed products and have no order yet: a first-order incentive.",
        {
            "match": "all",
            "conditions": [
                {
                    "kind": "event",
                    "did": True,
                    "name": "Product Viewed",
                    "count_operator": "gte",
                    "count": 1,
                    "period": "ever",
                },
                {"kind": "facts", "field": "orders_count", "operator": "eq", "value": 0},
            ],
        },
    ),
    (
        "Birthdays in the next 30 days",
        "For a birthday greeting with a gift code.",
        {
            "match": "all",
            "conditions": [
                {"kind": "attribute", "field": "birth_date", "operator": "anniversary_in_next_days", "value": 30}
            ],
        },
    ),
    (
        "Champions",
        "Bought recently, often and the most: the RFM Champions.",
        {"match": "all", "conditions": [{"kind": "rfm_segment", "operator": "in", "value": ["champions"]}]},
    ),
]


def seed(workspace: Workspace) -> None:
    now = timezone.now().replace(microsecond=0)
    histories = list(_histories(workspace, now))
    messages = sorted(
        (m for h in histories for m in h.messages),
        key=lambda m: (datetime.fromisoformat(m["timestamp"]), m["messageId"]),
    )
    if messages and not Event.objects.in_workspace(workspace).filter(message_id=messages[-1]["messageId"]).exists():
        _ingest(workspace, histories, messages)
        rfm_score(workspace_id=workspace.pk)
        lifecycle_refresh(workspace_id=workspace.pk)
        insight_figures_refresh(workspace_id=workspace.pk, scored_at=timezone.now())  # the pages' figures
    for name, description, rules in DEMO_SEGMENTS:
        if not Segment.objects.in_workspace(workspace).filter(name=name).exists():
            segment = segment_save(workspace=workspace, name=name, description=description, rules=rules)
            segment_refresh(segment_id=segment.pk)


def _ingest(workspace: Workspace, histories: list[_History], messages: list[dict[str, Any]]) -> None:
    pending, event_ids = [], []
    for start in range(0, len(messages), CHUNK):
        result = events_ingest(workspace=workspace, items=messages[start : start + CHUNK])
        if result.pending_id is not None:
            pending.append(result.pending_id)
        event_ids += result.event_ids
    # The calls above all arrived now; a live shop sends each event as it happens. Give the
    # demo that history: received a few seconds after it happened, the offline visits hours
    # later (the timeline marks those as late). Times only; identities and facts are untouched.
    late = sorted({message_id for h in histories for message_id in h.late})
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE audiences_event
               SET received_at = occurred_at + CASE WHEN message_id = ANY(%(late)s)
                   THEN interval '3 hours' + (hashtext(message_id) & 65535) * interval '1 second'
                   ELSE (1 + (hashtext(message_id) & 7)) * interval '1 second' END
               WHERE workspace_id = %(workspace)s AND id = ANY(%(ids)s)""",
            {"workspace": workspace.pk, "late": late, "ids": event_ids},
        )
        # The tables grew from (nearly) nothing inside this transaction, and autovacuum has not
        # seen them: without fresh statistics the planner takes them for empty and picks plans
        # that are slow on ten thousand rows. ANALYZE counts this transaction's own rows.
        cursor.execute("ANALYZE audiences_event")
        cursor.execute("ANALYZE audiences_contact")
    for pending_id in pending:
        pending_events_process(pending_id=pending_id)
