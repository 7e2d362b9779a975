"""Purchase facts recomputed from order events: duplicates, partial and full refunds, late
events, the median interval and predicted next order, products and categories, isolation.
Every expected number below is computed by hand from the events of the test."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from audiences.facts import purchase_facts_refresh
from audiences.models import Contact, CustomerFacts, LifecycleStage
from audiences.services import contact_save
from esp.models import Workspace
from tests.conftest import key_client
from tests.factories import EventFactory, api_key, order_event, refund_event

pytestmark = pytest.mark.django_db


def _contact(workspace: Workspace, email: str) -> Contact:
    return contact_save(workspace=workspace, data={"email": email})[0]


def _facts(contact: Contact) -> CustomerFacts:
    return CustomerFacts.objects.get(pk=contact.pk)


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(microsecond=0)


def test_orders_duplicates_refunds_products_and_intervals(acme: Workspace, now: datetime) -> None:
    ann = _contact(acme, "ann@example.com")

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    order_event(ann, "A1", 100, ago(100), products=[{"product_id": "p1", "category": "Shoes", "price": 100}])
    # The shop retried A1 with a new messageId and a different amount: still one order, the first.
    order_event(ann, "A1", 999, ago(99), products=[{"product_id": "dup", "category": "Dup"}])
    order_event(ann, "A2", None, ago(90), revenue="50.50", products=[{"sku": "s2", "category": "Hats"}])
    order_event(ann, "A3", 40, ago(70), products=[{"product_id": "p3", "category": "Shoes"}])
    refund_event(ann, "A3", ago(60), total=15)  # partial: A3 still counts, with 25
    # No total: the products' price × quantity is the amount (30); then it is refunded in full.
    order_event(
        ann, "A4", None, ago(5), products=[{"product_id": "p4", "category": "Socks", "price": 10, "quantity": 3}]
    )
    refund_event(ann, "A4", ago(4))
    order_event(ann, 5005, 24.5, ago(10))  # a numeric order_id is fine too
    EventFactory(contact=ann, name="Product Viewed", properties={"product_id": "p9"}, occurred_at=ago(1))

    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[ann.pk], now=now)

    facts = _facts(ann)
    # Counted orders: A1 100 (-100 d), A2 50.50 (-90 d), A3 40 − 15 (-70 d), 5005 24.50 (-10 d).
    assert facts.orders_count == 4
    assert facts.revenue == Decimal("200.00")
    assert facts.average_order_value == Decimal("50.00")
    assert facts.refunds_count == 2
    assert facts.refunded == Decimal("45.00")  # 15 of A3 + all 30 of A4
    assert facts.first_order_at == ago(100)
    assert facts.last_order_at == ago(10)
    # Gaps 10, 20, 60 days: the median is 20, so the next order is expected 10 days from now.
    assert facts.median_days_between_orders == pytest.approx(20.0)
    assert facts.predicted_next_order_at == now + timedelta(days=10)
    assert facts.products == ["p1", "p3", "s2"]  # not A4's p4 (refunded), not the duplicate's
    assert facts.categories == ["Hats", "Shoes"]
    assert facts.lifecycle_stage == LifecycleStage.LOYAL  # 4 orders, the last 10 days ago
    assert facts.workspace_id == acme.pk


def test_late_events_land_in_their_place_in_time(acme: Workspace, now: datetime) -> None:
    bob = _contact(acme, "bob@example.com")
    order_event(bob, "B2", 20, now - timedelta(days=10))
    order_event(bob, "B3", 30, now - timedelta(days=5))
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[bob.pk], now=now)
    assert _facts(bob).first_order_at == now - timedelta(days=10)
    assert _facts(bob).median_days_between_orders == pytest.approx(5.0)

    # An older order arrives after the newer ones, and a refund of an order not yet seen.
    order_event(bob, "B1", 10, now - timedelta(days=50))
    refund_event(bob, "B0", now - timedelta(days=2), total=5)
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[bob.pk], now=now)
    facts = _facts(bob)
    assert (facts.orders_count, facts.revenue, facts.refunds_count) == (3, Decimal("60.00"), 0)
    assert facts.first_order_at == now - timedelta(days=50)
    assert facts.last_order_at == now - timedelta(days=5)
    # Gaps 40 and 5 days: median 22.5; the prediction follows from the last order.
    assert facts.median_days_between_orders == pytest.approx(22.5)
    assert facts.predicted_next_order_at == now - timedelta(days=5) + timedelta(days=22.5)

    # The order the early refund was about arrives last: the refund now applies.
    order_event(bob, "B0", 8, now - timedelta(days=3))
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[bob.pk], now=now)
    facts = _facts(bob)
    assert (facts.orders_count, facts.revenue, facts.refunded) == (4, Decimal("63.00"), Decimal("5.00"))
    assert facts.last_order_at == now - timedelta(days=3)


def test_one_order_has_no_interval_and_a_full_refund_leaves_a_prospect(acme: Workspace, now: datetime) -> None:
    cy = _contact(acme, "cy@example.com")
    order_event(cy, "C1", "12.30", now - timedelta(days=3), products=[{"product_id": "p1"}])
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[cy.pk], now=now)
    facts = _facts(cy)
    assert (facts.orders_count, facts.revenue, facts.average_order_value) == (1, Decimal("12.30"), Decimal("12.30"))
    assert facts.median_days_between_orders is None and facts.predicted_next_order_at is None
    assert facts.lifecycle_stage == LifecycleStage.FIRST_TIME

    # Refunds adding up to the whole amount are a full refund, as one without an amount is.
    refund_event(cy, "C1", now - timedelta(days=2), total=10)
    refund_event(cy, "C1", now - timedelta(days=1), total="2.30")
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[cy.pk], now=now)
    facts = _facts(cy)
    assert (facts.orders_count, facts.revenue, facts.average_order_value) == (0, Decimal("0.00"), None)
    assert (facts.refunds_count, facts.refunded) == (1, Decimal("12.30"))
    assert facts.first_order_at is None and facts.last_order_at is None
    assert facts.products == [] and facts.categories == []
    assert facts.lifecycle_stage == LifecycleStage.PROSPECT


def test_refunds_are_capped_and_bad_amounts_are_ignored(acme: Workspace, now: datetime) -> None:
    dee = _contact(acme, "dee@example.com")
    at = now - timedelta(days=1)
    order_event(dee, "D1", 50, at)
    refund_event(dee, "D1", at, total=30)
    refund_event(dee, "D1", at, total=30)  # together more than the order: a full refund of 50
    order_event(dee, "D2", "not a number", at, revenue=-3, products="not a list")  # amount 0, still an order
    order_event(dee, None, 7, at)  # without an order_id: an order of its own
    order_event(dee, None, 7, at)
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[dee.pk], now=now)
    facts = _facts(dee)
    assert (facts.orders_count, facts.revenue, facts.refunded) == (3, Decimal("14.00"), Decimal("50.00"))


def test_no_row_without_orders_and_no_work_for_nothing(acme: Workspace, now: datetime) -> None:
    eve = _contact(acme, "eve@example.com")
    EventFactory(contact=eve, name="Product Viewed")
    EventFactory(contact=eve, type="page", name="Order Completed", properties={"order_id": "x", "total": 5})
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[eve.pk], now=now)
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[], now=now)
    assert not CustomerFacts.objects.filter(pk=eve.pk).exists()  # no row: a prospect


def test_refresh_is_scoped_to_the_workspace(acme: Workspace, globex: Workspace, now: datetime) -> None:
    ours = _contact(acme, "same@example.com")
    theirs = _contact(globex, "same@example.com")
    order_event(ours, "X1", 10, now - timedelta(days=1))
    order_event(theirs, "X1", 99, now - timedelta(days=1))
    # globex's contact id given with acme's workspace: ignored, not computed into acme.
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[ours.pk, theirs.pk], now=now)
    assert list(CustomerFacts.objects.values_list("contact_id", "revenue")) == [(ours.pk, Decimal("10.00"))]
    purchase_facts_refresh(workspace_id=globex.pk, contact_ids=[theirs.pk], now=now)
    assert _facts(theirs).revenue == Decimal("99.00") and _facts(theirs).workspace_id == globex.pk
    assert _facts(ours).revenue == Decimal("10.00")


def test_an_unchanged_contact_is_not_rewritten(acme: Workspace, now: datetime) -> None:
    fay = _contact(acme, "fay@example.com")
    order_event(fay, "F1", 10, now - timedelta(days=1))
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[fay.pk], now=now)
    first = _facts(fay).updated_at
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[fay.pk], now=now + timedelta(minutes=5))
    assert _facts(fay).updated_at == first
    order_event(fay, "F2", 10, now)
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[fay.pk], now=now + timedelta(minutes=5))
    assert _facts(fay).updated_at == now + timedelta(minutes=5)


def test_profile_and_api_show_the_purchases(acme: Workspace, acme_client: Client, now: datetime) -> None:
    from audiences.facts import rfm_score

    gus = _contact(acme, "gus@example.com")
    order_event(gus, "G1", "19.90", now - timedelta(days=20))
    order_event(gus, "G2", "30.10", now - timedelta(days=10))
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[gus.pk])
    rfm_score(workspace_id=acme.pk)

    page = acme_client.get(f"/audience/contacts/{gus.pk}/").content.decode()
    panel = page[page.index('id="purchases"') : page.index('class="grid profile-grid"')]
    assert (
        "<strong>2</strong>orders" in panel
        and "<strong>€50.00</strong>" in panel
        and "<strong>€25.00</strong>" in panel
    )
    assert "Repeat customer" in panel and "R1 F1 M1" in panel and "orders every 10 days" in panel

    facts = key_client(api_key(acme)).get(f"/api/v1/contacts/{gus.pk}").json()["facts"]
    assert facts["orders_count"] == 2 and facts["revenue"] == "50.00" and facts["lifecycle_stage"] == "repeat"
    assert facts["rfm_segment"] == "lost" and facts["median_days_between_orders"] == pytest.approx(10.0)

    newbie = _contact(acme, "new@example.com")
    assert "No orders yet" in acme_client.get(f"/audience/contacts/{newbie.pk}/").content.decode()
    facts = key_client(api_key(acme)).get(f"/api/v1/contacts/{newbie.pk}").json()["facts"]
    assert facts["orders_count"] == 0 and facts["lifecycle_stage"] == "prospect" and facts["last_order_at"] is None


# --- big batches and whole workspaces -------------------------------------------------------


def _shop(workspace: Workspace, now: datetime, customers: int) -> list[Contact]:
    """Customers with 0–3 orders each, some refunded in part or in full, some with products."""
    contacts = []
    for n in range(customers):
        contact = _contact(workspace, f"buyer{n}@example.com")
        contacts.append(contact)
        for k in range(n % 4):
            products = [{"product_id": f"p{(n + k) % 5}", "category": f"c{k}", "price": 10}] if n % 3 else None
            order_event(contact, f"{n}-{k}", 10 + n + k, now - timedelta(days=3 * k + n % 7), products)
        if n % 5 == 1:
            refund_event(contact, f"{n}-0", now - timedelta(hours=1), total=5)
        if n % 7 == 2:
            refund_event(contact, f"{n}-1", now - timedelta(hours=1))
    return contacts


_COMPARED = (
    "orders_count", "revenue", "average_order_value", "refunds_count", "refunded", "first_order_at",
    "last_order_at", "products", "categories", "median_days_between_orders", "predicted_next_order_at",
    "lifecycle_stage",
)  # fmt: skip


def _all_facts(workspace: Workspace) -> dict[int, tuple[object, ...]]:
    return {
        row[0]: row[1:]
        for row in CustomerFacts.objects.filter(workspace=workspace).values_list("contact_id", *_COMPARED)
    }


def test_one_batch_gives_what_contact_by_contact_gives(acme: Workspace, now: datetime) -> None:
    contacts = _shop(acme, now, 40)
    for contact in contacts:
        purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[contact.pk], now=now)
    one_by_one = _all_facts(acme)
    CustomerFacts.objects.filter(workspace=acme).delete()
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[c.pk for c in contacts], now=now)
    assert _all_facts(acme) == one_by_one and len(one_by_one) == 30  # every 4th never ordered


def test_the_refresh_never_joins_intermediate_results(acme: Workspace, now: datetime) -> None:
    """A join between CTEs is planned from a guess of a few rows: a nested loop over them made
    a batch of 10,000 contacts take minutes. The refresh groups instead (linear)."""
    from django.db import connection

    from audiences.facts.lifecycle import _stage_params, lifecycle_thresholds
    from audiences.facts.purchases import _REFRESH_SQL, ORDER_COMPLETED, ORDER_REFUNDED

    params = {
        "ws": acme.pk,
        "ids": list(range(1, 10_001)),
        "completed": ORDER_COMPLETED,
        "refunded": ORDER_REFUNDED,
        **_stage_params(lifecycle_thresholds(workspace_id=acme.pk), now),
    }
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {_REFRESH_SQL}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "CTE Scan" not in plan, plan


def test_the_rebuild_command_fills_a_bulk_loaded_workspace(
    acme: Workspace, globex: Workspace, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import call_command

    contacts = _shop(acme, now, 25)
    theirs = _shop(globex, now, 3)
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[c.pk for c in contacts], now=now)
    expected = _all_facts(acme)
    CustomerFacts.objects.all().delete()  # as after a bulk load: events, no facts

    call_command("facts_rebuild", workspace=acme.pk, batch=4)
    out = capsys.readouterr().out
    assert "facts of 25 contacts recomputed" in out and "customers scored" in out
    rebuilt = _all_facts(acme)
    assert rebuilt.keys() == expected.keys()
    assert rebuilt == expected
    assert not CustomerFacts.objects.filter(contact__in=theirs).exists()
    assert CustomerFacts.objects.filter(workspace=acme, recency_score__isnull=False).count() == len(expected) - sum(
        1 for row in expected.values() if row[0] == 0
    )
