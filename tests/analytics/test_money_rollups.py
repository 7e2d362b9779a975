"""The money in the rollups equals the live attribution over the raw rows: after random mail,
human and machine opens and clicks, orders (some repeated), refunds (some before their order)
in two workspaces in two zones, refreshed round after round; after a rebuild; and after a
rebuild of one period. Touches are written before the orders they precede (as they happen):
a touch that arrives after its order is the late click of test_attribution."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from analytics.attribution import attribution_refresh
from analytics.live import live_money, live_orders
from analytics.models import DailyOrders
from analytics.rollups import rollups_rebuild, rollups_refresh
from esp.models import Workspace
from tests.analytics.helpers import contact, event, message, money_rows, order, rollup_rows

START = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
SOURCES = ["broadcast:7{d}", "broadcast:8{d}", "step:1{d}:welcome", "step:2{d}:reminder", "tx:order-{d}", "test:t{d}"]


def _orders_rows(workspace: Workspace) -> dict[dt.date, tuple[int, Any]]:
    return {
        row.day: (row.orders, row.revenue)
        for row in DailyOrders.objects.filter(workspace=workspace)
        if row.orders or row.revenue
    }


def _assert_equal(*workspaces: Workspace) -> None:
    for workspace in workspaces:
        assert money_rows(workspace) == live_money(workspace=workspace), workspace.slug
        live = {day: value for day, value in live_orders(workspace=workspace).items() if value[0] or value[1]}
        assert _orders_rows(workspace) == live, workspace.slug


class Shop:
    def __init__(self, rng: random.Random, workspace: Workspace) -> None:
        self.rng, self.workspace = rng, workspace
        self.people = [contact(workspace) for _ in range(12)]
        self.orders: list[tuple[Any, str]] = []
        self.mail: list[Any] = []
        self.sent: set[tuple[str, int]] = set()

    def round(self, start: dt.datetime) -> None:
        rng = self.rng
        for _ in range(15):
            person = rng.choice(self.people)
            sent = start + dt.timedelta(hours=rng.uniform(0, 6))
            # One message per source and contact (as the send road makes them): the round's day in it.
            source = rng.choice(SOURCES).format(d=start.day)
            if (source, person.pk) not in self.sent:
                self.sent.add((source, person.pk))
                self.mail.append(message(self.workspace, source=source, sent_at=sent, contact=person))
        # Touches first: within the round's day, after each mail's send.
        for _ in range(30):
            mail = rng.choice(self.mail)
            at = max(mail.sent_at, start) + dt.timedelta(hours=rng.uniform(0, 8))
            event(mail, rng.choice(["opened", "clicked", "delivered"]), at, machine=rng.random() < 0.3)
        # Then orders, later that day; some repeated (a retry: later, the same order_id).
        for n in range(8):
            person = rng.choice(self.people)
            at = start + dt.timedelta(hours=rng.uniform(8, 23))
            order_id = f"{self.workspace.slug}-{start.date()}-{n}"
            amount = rng.choice([10, "19.90", 55, None, "bad"])
            order(self.workspace, person, at, amount, order_id=order_id, products=[{"price": 3, "quantity": 2}])
            self.orders.append((person, order_id))
            if rng.random() < 0.2:
                order(self.workspace, person, at + dt.timedelta(hours=1), 999, order_id=order_id)
        # Refunds of any order so far, partial or full, and one of an order still to come.
        for _ in range(3):
            person, order_id = rng.choice(self.orders)
            order(self.workspace, person, start + dt.timedelta(hours=23), rng.choice([5, None, "7.5"]),
                  order_id=order_id, name="Order Refunded")  # fmt: skip
        ahead = f"{self.workspace.slug}-{(start + dt.timedelta(days=1)).date()}-0"
        order(self.workspace, self.rng.choice(self.people), start, 2, order_id=ahead, name="Order Refunded")


@pytest.mark.django_db
def test_money_rollups_equal_the_live_attribution(acme: Workspace, globex: Workspace) -> None:
    acme.time_zone = "Europe/Sofia"
    acme.save()
    globex.time_zone = "America/New_York"
    globex.save()
    rng = random.Random(42)  # noqa: S311 — repeatable test data
    shops = [Shop(rng, acme), Shop(rng, globex)]
    for day in range(6):
        for shop in shops:
            shop.round(START + dt.timedelta(days=day))
        rollups_refresh()
        attribution_refresh()
        _assert_equal(acme, globex)
    assert money_rows(acme) and money_rows(globex)
    counters = rollup_rows(acme)
    money = money_rows(acme)
    rollups_rebuild(workspace=acme)
    assert rollup_rows(acme) == counters and money_rows(acme) == money
    # A rebuild of a period keeps the money of the days around it.
    rollups_rebuild(workspace=globex, since=dt.date(2026, 2, 3), until=dt.date(2026, 2, 4))
    _assert_equal(acme, globex)
