"""The journey, cohorts, list growth and deliverability rollups on hand-built data, each figure
worked out by hand; the incremental refresh equals a rebuild after random inserts; two
workspaces never mix."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from decimal import Decimal
from typing import Any

import pytest

from analytics.cohorts import cohorts_read
from analytics.deliverability import by_provider, provider_days_rebuild, provider_of, warning_compute
from analytics.journey import customer_months_refresh, journey_rebuild, journey_refresh
from analytics.journey_models import CohortCell, CustomerMonth, JourneyFlow, JourneySnapshot
from analytics.journey_report import journey_report
from analytics.rollups import rollups_refresh
from audiences.models import Contact, Event, MailingList, Subscription
from esp.models import Workspace
from tests.analytics.helpers import event, message

_ids = itertools.count()
UTC = dt.UTC
NOW = dt.datetime(2026, 4, 15, 12, tzinfo=UTC)


def _contact(workspace: Workspace, created: dt.datetime, email: str | None = None) -> Contact:
    return Contact.objects.create(workspace=workspace, email=email or f"c{next(_ids)}@example.com", created_at=created)


def _order(
    contact: Contact, at: dt.datetime, total: Any, order_id: str | None = None, name: str = "Order Completed"
) -> Event:
    properties: dict[str, Any] = {"order_id": order_id or f"o{next(_ids)}"}
    if total is not None:
        properties["total"] = total
    return Event.objects.create(
        workspace_id=contact.workspace_id, contact=contact, type="track", name=name, properties=properties,
        message_id=f"m{next(_ids)}", occurred_at=at,
    )  # fmt: skip


def _at(month: int, day: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, 12, tzinfo=UTC)


@pytest.fixture
def shop(acme: Workspace, globex: Workspace) -> dict[str, Contact]:
    """January: a, b arrive; a orders (100) in January and again in February (50) and March
    (30, then refunded 10); b orders once in February (40). c arrives in February and never
    orders. d arrives in March and orders in March (200, fully refunded: no order). e arrives
    in March and orders twice in March (20 + 20). globex's contact orders too (never counted)."""
    a, b = _contact(acme, _at(1, 2)), _contact(acme, _at(1, 3))
    c, d, e = _contact(acme, _at(2, 1)), _contact(acme, _at(3, 1)), _contact(acme, _at(3, 2))
    _order(a, _at(1), 100)
    _order(a, _at(2), 50)
    _order(a, _at(3), 30, order_id="a3")
    _order(a, _at(3, 20), 10, order_id="a3", name="Order Refunded")
    _order(b, _at(2, 5), 40)
    _order(d, _at(3, 5), 200, order_id="d1")
    _order(d, _at(3, 6), None, order_id="d1", name="Order Refunded")
    _order(e, _at(3, 3), 20)
    _order(e, _at(3, 4), 20)
    _order(_contact(globex, _at(1, 2)), _at(1), 9999)
    journey_rebuild(workspace=acme, now=NOW)
    journey_rebuild(workspace=globex, now=NOW)
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


@pytest.mark.django_db
def test_customer_months_count_orders_and_refunds_by_month(acme: Workspace, shop: dict[str, Contact]) -> None:
    rows = {(r.contact_id, r.month): (r.orders, r.revenue) for r in CustomerMonth.objects.filter(workspace=acme)}
    a, b, e = shop["a"].pk, shop["b"].pk, shop["e"].pk
    assert rows == {
        (a, dt.date(2026, 1, 1)): (1, Decimal("100.00")),
        (a, dt.date(2026, 2, 1)): (1, Decimal("50.00")),
        (a, dt.date(2026, 3, 1)): (1, Decimal("20.00")),  # 30 − the partial refund of 10
        (b, dt.date(2026, 2, 1)): (1, Decimal("40.00")),
        (e, dt.date(2026, 3, 1)): (2, Decimal("40.00")),
    }  # d's only order was refunded in full: no order


@pytest.mark.django_db
def test_cohorts_retention_ltv_aov_repeat_by_hand(acme: Workspace, shop: dict[str, Contact]) -> None:
    cohorts = {c.cohort: c for c in cohorts_read(workspace=acme, first=dt.date(2026, 1, 1), last=dt.date(2026, 4, 1))}
    january, february, march = (cohorts[dt.date(2026, m, 1)] for m in (1, 2, 3))
    # January: a alone. Active in months 0, 1, 2; LTV 100, 150, 170, 170.
    assert january.customers == 1
    assert [x.retention for x in january.cells] == [1.0, 1.0, 1.0, 0.0]
    assert [x.ltv for x in january.cells] == [
        Decimal("100.00"),
        Decimal("150.00"),
        Decimal("170.00"),
        Decimal("170.00"),
    ]
    assert january.aov == Decimal("56.67")  # 170 ÷ 3 orders
    assert [x.repeat_rate for x in january.cells] == [0.0, 1.0, 1.0, 1.0]
    # February: b alone, one order: repeat rate 0, LTV 40.
    assert (february.customers, february.repeat_rate, february.ltv) == (1, 0.0, Decimal("40.00"))
    # March: e (two orders in its first month); d's refunded order makes no customer.
    assert (march.customers, march.orders, march.aov, march.repeat_rate) == (1, 2, Decimal("20.00"), 1.0)
    assert not CohortCell.objects.filter(revenue=Decimal("9999"), workspace=acme).exists()


@pytest.mark.django_db
def test_stages_and_flows_month_by_month(acme: Workspace, shop: dict[str, Contact]) -> None:
    stages = {(s.month, s.value): s.contacts for s in JourneySnapshot.objects.filter(workspace=acme, kind="stage")}
    jan, feb, mar = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)
    # January: a first-time, b prospect. February: a and b... a repeat (2), b first-time, c prospect.
    # March: a repeat (3 orders, under the loyal threshold of 4), b first-time, e repeat, c and d prospects.
    assert (stages[(jan, "first_time")], stages[(jan, "prospect")]) == (1, 1)
    assert (stages[(feb, "repeat")], stages[(feb, "first_time")], stages[(feb, "prospect")]) == (1, 1, 1)
    assert (stages[(mar, "repeat")], stages[(mar, "first_time")], stages[(mar, "prospect")]) == (2, 1, 2)
    flows = {(f.month, f.source, f.target): f.contacts for f in JourneyFlow.objects.filter(workspace=acme)}
    assert flows[(feb, "first_time", "repeat")] == 1  # a
    assert flows[(feb, "prospect", "first_time")] == 1  # b
    assert flows[(feb, "new", "prospect")] == 1  # c
    assert flows[(mar, "new", "repeat")] == 1  # e arrived and ordered twice
    assert flows[(mar, "new", "prospect")] == 1  # d (its order refunded)
    report = journey_report(workspace=acme, first=feb, last=mar)
    march = report.months[-1]
    assert march.first_order_rate == 0.5  # e of d, e
    assert march.repeat_rate == 0.5  # a had ordered before; e had not
    assert (march.ordering, march.returning) == (2, 1)


@pytest.mark.django_db
def test_the_hook_and_refresh_equal_a_rebuild_after_random_inserts(acme: Workspace) -> None:
    rng = random.Random(7)  # noqa: S311 — a repeatable test data set
    people = [_contact(acme, _at(rng.randint(1, 3), rng.randint(1, 28))) for _ in range(12)]
    for _ in range(40):
        person = rng.choice(people)
        order_id = f"r{rng.randint(1, 30)}"
        kind = rng.choice(["Order Completed", "Order Completed", "Order Refunded"])
        _order(person, _at(rng.randint(1, 4), rng.randint(1, 14)), rng.choice([None, 5, "12.50", 80]), order_id, kind)
    customer_months_refresh(workspace=acme, contact_ids=[p.pk for p in people[:6]])
    from analytics.journey import contacts_note_changed

    contacts_note_changed(acme.pk, [p.pk for p in people[6:]])
    journey_refresh(now=NOW)
    refreshed = _state(acme)
    journey_rebuild(workspace=acme, now=NOW)
    assert _state(acme) == refreshed


def _state(workspace: Workspace) -> tuple[Any, ...]:
    months = sorted(
        CustomerMonth.objects.filter(workspace=workspace).values_list("contact_id", "month", "orders", "revenue")
    )
    cells = sorted(
        CohortCell.objects.filter(workspace=workspace).values_list("cohort", "offset", "active", "revenue", "repeaters")
    )
    snaps = sorted(
        JourneySnapshot.objects.filter(workspace=workspace, kind="stage").values_list("month", "value", "contacts")
    )
    return months, cells, snaps


@pytest.mark.django_db
def test_list_growth_per_list(acme: Workspace, shop: dict[str, Contact]) -> None:
    news = MailingList.objects.create(workspace=acme, name="News")
    Subscription.objects.create(workspace=acme, contact=shop["a"], mailing_list=news, status="subscribed",
                                created_at=_at(2), confirmed_at=_at(2))  # fmt: skip
    Subscription.objects.create(workspace=acme, contact=shop["b"], mailing_list=news, status="unsubscribed",
                                created_at=_at(2), unsubscribed_at=_at(3))  # fmt: skip
    journey_rebuild(workspace=acme, now=NOW)
    report = journey_report(workspace=acme, first=dt.date(2026, 2, 1), last=dt.date(2026, 3, 1))
    growth = {g.name: g for g in report.lists}["News"]
    assert growth.months == [(dt.date(2026, 2, 1), 2, 1, 0, 2), (dt.date(2026, 3, 1), 0, 0, 1, -1)]
    march = report.months[-1]
    # Churn in March: b's unsubscribe, over the audience: 3 contacts at its start + 2 arrived.
    assert (march.churned, march.audience) == (1, 5)


# --- deliverability ---------------------------------------------------------------------------


def _to(m: Any, address: str) -> Any:
    type(m).objects.filter(pk=m.pk).update(to_email=address)
    return m


@pytest.mark.parametrize(
    ("address", "provider"),
    [("a@gmail.com", "gmail"), ("a@GoogleMail.com", "gmail"), ("a@hotmail.co.uk", "outlook"), ("a@live.com", "outlook"),
     ("a@msn.com", "outlook"), ("a@ya.ru", "yandex"), ("a@yandex.kz", "yandex"), ("a@inbox.ru", "mailru"),
     ("a@bk.ru", "mailru"), ("a@list.ru", "mailru"), ("a@abv.bg", "abv"), ("a@yahoo.co.jp", "yahoo"),
     ("a@shop.example", "others"), ("a@gmail.com.test", "gmail"), ("a@mail.ru.test", "mailru"),
     ("a@shop.test", "others")],
)  # fmt: skip
def test_provider_of_a_domain(address: str, provider: str) -> None:
    assert provider_of(address) == provider


@pytest.mark.django_db
def test_complaint_rates_per_provider_and_the_warning(acme: Workspace, globex: Workspace) -> None:
    from django.utils import timezone

    now = timezone.now() - dt.timedelta(hours=1)
    # Gmail: 400 delivered, 2 complaints = 0.50 % (danger); Mail.ru: 300 delivered, none.
    for n in range(400):
        m = _to(message(acme, sent_at=now), f"g{n}@gmail.com")
        event(m, "delivered", now)
        if n < 2:
            event(m, "complained", now)
    for n in range(300):
        m = _to(message(acme, sent_at=now), f"r{n}@mail.ru")
        event(m, "delivered", now)
    m = _to(message(globex, sent_at=now), "x@gmail.com")
    event(m, "complained", now)
    rollups_refresh()
    today = now.astimezone(acme.zone).date()
    provider_days_rebuild(workspace=acme, since=today - dt.timedelta(days=8))
    figures = {f.provider: f for f in by_provider(workspace=acme, start=today - dt.timedelta(days=1), end=today)}
    assert (figures["gmail"].totals.delivered, figures["gmail"].totals.complained) == (400, 2)
    assert figures["gmail"].totals.complaint_rate == 0.005 and figures["gmail"].complaint_level == "danger"
    assert figures["mailru"].complaint_level == "" and figures["mailru"].totals.sent == 300
    warning = warning_compute(workspace=acme)
    assert warning is not None and (warning.level, warning.provider, warning.what) == ("danger", "Gmail", "complaints")
    assert warning_compute(workspace=globex) is None  # one complaint, too little mail to judge


@pytest.mark.django_db
def test_the_banner_shows_on_every_page(acme: Workspace, acme_client: Any) -> None:
    from django.core.cache import cache

    from analytics.deliverability import _warning_key

    cache.set(_warning_key(acme.pk), ("danger", "Gmail", "complaints", 0.005), 60)
    try:
        page = acme_client.get("/contacts/").content.decode()
        assert 'id="deliverability-banner"' in page and "0.50" in page
    finally:
        cache.delete(_warning_key(acme.pk))
