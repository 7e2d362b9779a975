"""Every recipe builds a series whose steps pass the same check as any series, and publishes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from audiences.models import Contact, Segment
from automations.models import Enrollment, EnrollmentState, Series, SeriesStatus, TraceOutcome
from automations.recipes import RECIPES, series_from_recipe
from automations.services import series_publish
from campaigns.models import MessageSource, MessageState
from esp.models import Workspace
from tests.automations.series_helpers import contact, messages, outcomes, send_all, tick, track


@pytest.mark.parametrize("key", sorted(RECIPES))
def test_recipe_makes_a_publishable_series(acme: Workspace, key: str) -> None:
    series = series_from_recipe(workspace=acme, recipe_key=key)
    assert series.status == SeriesStatus.DRAFT
    series_publish(workspace=acme, series_id=series.pk)
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE
    assert series.live_version is not None and series.live_version.steps["steps"]


def _recipe_live(workspace: Workspace, key: str) -> Series:
    series = series_from_recipe(workspace=workspace, recipe_key=key)
    series_publish(workspace=workspace, series_id=series.pk)
    series.refresh_from_db()
    return series


def _steps(person: Contact) -> list[str]:
    return [MessageSource.parse(m.source).key.split(":")[1] for m in messages(person)]


@pytest.mark.usefixtures("clock")
def test_abandoned_cart_recipe_end_to_end(acme: Workspace, clock: Any) -> None:
    series = _recipe_live(acme, "abandoned_cart")
    left = contact(acme, "left@acme.test", first_name="Lena")
    bought = contact(acme, "bought@acme.test")
    cart = {"products": [{"name": "Tent", "price": 149.0, "quantity": 1}], "value": 149.0, "currency": "EUR"}
    # Events are handled a moment after they happened, as the pipeline does.
    track(left, "Checkout Started", at=clock.now() - dt.timedelta(seconds=5), cart_id="A", **cart)
    track(bought, "Checkout Started", at=clock.now() - dt.timedelta(seconds=5), cart_id="B1", **cart)
    track(bought, "Checkout Started", at=clock.now() - dt.timedelta(seconds=5), cart_id="B2", **cart)
    clock.advance(minutes=30)
    track(bought, "Order Completed", at=clock.now() - dt.timedelta(seconds=5), cart_id="B1", order_id="o-1")
    assert messages(left) == messages(bought) == []

    clock.advance(minutes=31)
    tick()
    assert _steps(left) == ["reminder"]
    assert _steps(bought) == ["reminder"]  # cart B2's: the order was of B1
    assert send_all() == 2
    first = messages(left)[0]
    assert first.data["event"]["cart_id"] == "A" and first.data["event"]["products"][0]["name"] == "Tent"
    clock.advance(hours=23)
    tick()
    assert _steps(left) == ["reminder", "second"]
    assert send_all() == 2
    track(bought, "Order Completed", at=clock.now() - dt.timedelta(seconds=5), cart_id="B2", order_id="o-2")
    clock.advance(days=2)
    tick()
    assert _steps(left) == ["reminder", "second", "coupon"]
    assert _steps(bought) == ["reminder", "second"]
    assert send_all() == 1
    assert [m.state for m in messages(left)] == [MessageState.SENT] * 3
    assert messages(left)[-1].subject == "Your cart, with 10 % off"

    by_key = {e.entry_key: e for e in Enrollment.objects.filter(series=series)}
    assert by_key["A"].state == EnrollmentState.COMPLETED
    assert by_key["B1"].state == EnrollmentState.CONVERTED  # the keyed goal, during the hour's wait
    assert by_key["B2"].state == EnrollmentState.CONVERTED
    assert outcomes(by_key["B2"])[-1][1] == TraceOutcome.CONVERTED


@pytest.mark.usefixtures("clock")
def test_welcome_recipe_end_to_end(acme: Workspace, clock: Any) -> None:
    series = _recipe_live(acme, "welcome")
    browsing = contact(acme, "browsing@acme.test")
    buyer = contact(acme, "buyer@acme.test")
    for person in (browsing, buyer):
        track(person, "Signed Up", at=clock.now() - dt.timedelta(seconds=5))
    assert _steps(browsing) == _steps(buyer) == ["welcome"]
    track(browsing, "Signed Up", at=clock.now() - dt.timedelta(seconds=1))  # once ever: no second welcome
    clock.advance(days=1)
    track(buyer, "Order Completed", at=clock.now() - dt.timedelta(seconds=5), order_id="w-1")
    assert send_all() == 2
    for days in (2, 5, 7):
        clock.advance(days=days)
        tick()
        assert send_all() == 1
    assert _steps(browsing) == ["welcome", "bestsellers", "story", "coupon"]
    assert _steps(buyer) == ["welcome"]
    assert [m.state for m in messages(browsing)] == [MessageState.SENT] * 4
    assert messages(browsing)[-1].subject == "10 % off your first order"

    enrollments = {e.contact_id: e for e in Enrollment.objects.filter(series=series)}
    assert len(enrollments) == 2
    assert enrollments[browsing.pk].state == EnrollmentState.COMPLETED
    assert enrollments[buyer.pk].state == EnrollmentState.CONVERTED
    assert [o for o in outcomes(enrollments[browsing.pk]) if o[0] == "ordered"] == [
        ("ordered", TraceOutcome.BRANCHED, "no")
    ]


def test_recipes_share_their_segment(acme: Workspace) -> None:
    first = series_from_recipe(workspace=acme, recipe_key="win_back")
    second = series_from_recipe(workspace=acme, recipe_key="win_back")
    assert first.trigger["segment"] == second.trigger["segment"]
    assert Segment.objects.filter(workspace=acme, pk=first.trigger["segment"]).count() == 1


@pytest.mark.usefixtures("clock")
def test_promo_recipe_starts_in_the_future(acme: Workspace, clock: Any) -> None:
    series = series_from_recipe(workspace=acme, recipe_key="promo")
    at = dt.datetime.fromisoformat(series.trigger["at"])
    assert clock.now() + dt.timedelta(days=6) < at < clock.now() + dt.timedelta(days=8)
    assert Segment.objects.filter(workspace=acme, pk=series.trigger["segment"]).exists()
