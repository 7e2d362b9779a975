"""Attribution on hand-built data, every expected figure worked out by hand: last click within
the click window, else last human open within the open window, both windows at their edges;
machine opens and scanner clicks never attribute; a refund takes revenue back; the money lands
on the attributed message's rollup row; two workspaces never mix; a click that arrives late
does not move an order already attributed, a rebuild does."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from analytics.attribution import attribution_refresh, attribution_settings_save
from analytics.models import Attribution, AttributionSettings, DailyOrders
from analytics.rollups import rollups_rebuild, rollups_refresh
from esp.models import Workspace
from tests.analytics.helpers import contact, event, message, money_rows, order

NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SENT = NOW - 10 * DAY  # every email of these tests went out on 10 March
SENT_DAY = SENT.date()


def _refresh() -> None:
    rollups_refresh()
    attribution_refresh()


def _mail(workspace: Workspace, person: object, broadcast: int) -> object:
    return message(workspace, source=f"broadcast:{broadcast}", sent_at=SENT, contact=person)


def _money(workspace: Workspace) -> dict[int, tuple[int, Decimal]]:
    """broadcast id -> (conversions, revenue)."""
    return {key[2]: value for key, value in money_rows(workspace).items()}


@pytest.mark.django_db
def test_last_click_beats_a_later_open_and_both_windows_hold_at_their_edges(acme: Workspace) -> None:
    # A: clicked broadcast 1 three days before, opened broadcast 2 a day before -> broadcast 1.
    a = contact(acme)
    event(_mail(acme, a, 1), "clicked", NOW - 3 * DAY)
    event(_mail(acme, a, 2), "opened", NOW - DAY)
    order(acme, a, NOW, "100.00")
    # B: a click exactly 5 days before (the edge counts) -> broadcast 3.
    b = contact(acme)
    event(_mail(acme, b, 3), "clicked", NOW - 5 * DAY)
    order(acme, b, NOW, 40)
    # C: a click 5 days and a second before (outside), an open 4 days before -> broadcast 5, by open.
    c = contact(acme)
    event(_mail(acme, c, 4), "clicked", NOW - 5 * DAY - dt.timedelta(seconds=1))
    event(_mail(acme, c, 6), "opened", NOW - 5 * DAY - dt.timedelta(seconds=1))
    event(_mail(acme, c, 5), "opened", NOW - 4 * DAY)
    order(acme, c, NOW, "25.50")
    # D: a click after the order attributes nothing -> not attributed.
    d = contact(acme)
    event(_mail(acme, d, 7), "clicked", NOW + dt.timedelta(minutes=1))
    order(acme, d, NOW, 10)
    _refresh()
    assert _money(acme) == {1: (1, Decimal("100.00")), 3: (1, Decimal("40.00")), 5: (1, Decimal("25.50"))}
    touches = dict(Attribution.objects.filter(workspace=acme).values_list("contact_id", "touch"))
    assert touches == {a.pk: "click", b.pk: "click", c.pk: "open", d.pk: ""}
    # The money is on the day the attributed message went out, not the day of the order.
    assert {key[0] for key in money_rows(acme)} == {SENT_DAY}
    # The shop's orders: all four, on the order's day.
    assert DailyOrders.objects.get(workspace=acme, day=NOW.date()).orders == 4
    assert DailyOrders.objects.get(workspace=acme, day=NOW.date()).revenue == Decimal("175.50")


@pytest.mark.django_db
def test_machine_opens_and_scanner_clicks_never_attribute(acme: Workspace) -> None:
    person = contact(acme)
    mail = _mail(acme, person, 1)
    event(mail, "opened", NOW - dt.timedelta(hours=1), machine=True)  # Apple MPP
    event(mail, "clicked", NOW - dt.timedelta(minutes=30), machine=True)  # a link scanner
    order(acme, person, NOW, 60)
    # Another contact's human click on the same broadcast does not count for this order.
    other = contact(acme)
    event(_mail(acme, other, 1), "clicked", NOW - dt.timedelta(hours=2))
    _refresh()
    assert _money(acme) == {}
    assert Attribution.objects.get(workspace=acme).message_id is None


@pytest.mark.django_db
def test_a_refund_reduces_revenue_and_a_full_refund_takes_the_conversion(acme: Workspace) -> None:
    partly, fully, early = contact(acme), contact(acme), contact(acme)
    for person, broadcast in ((partly, 1), (fully, 2), (early, 3)):
        event(_mail(acme, person, broadcast), "clicked", NOW - DAY)
    order(acme, partly, NOW, 80, order_id="A-1")
    order(acme, fully, NOW, 90, order_id="B-1")
    # A refund that arrives before its order (kept in the event store) is applied when it comes.
    order(acme, early, NOW + DAY, 5, order_id="C-1", name="Order Refunded")
    _refresh()
    assert _money(acme) == {1: (1, Decimal(80)), 2: (1, Decimal(90))}
    order(acme, partly, NOW + DAY, 30, order_id="A-1", name="Order Refunded")
    order(acme, fully, NOW + DAY, order_id="B-1", name="Order Refunded")  # no amount: everything
    order(acme, early, NOW, 20, order_id="C-1")
    _refresh()
    assert _money(acme) == {1: (1, Decimal(50)), 3: (1, Decimal(15))}
    # A second partial refund adds up, capped at the order's amount.
    order(acme, partly, NOW + 2 * DAY, 70, order_id="A-1", name="Order Refunded")
    _refresh()
    assert _money(acme) == {3: (1, Decimal(15))}


@pytest.mark.django_db
def test_two_workspaces_never_mix(acme: Workspace, globex: Workspace) -> None:
    for workspace, amount in ((acme, 10), (globex, 1000)):
        person = contact(workspace)
        event(_mail(workspace, person, 1), "clicked", NOW - DAY)
        order(workspace, person, NOW, amount)
    # A globex order of a contact id that clicked in acme: not the same person.
    acme_person = contact(acme)
    event(_mail(acme, acme_person, 2), "clicked", NOW - DAY)
    from audiences.models import Event

    Event.objects.create(
        workspace=globex, contact_id=acme_person.pk, type="track", name="Order Completed",
        properties={"total": 500}, message_id="cross", occurred_at=NOW,
    )  # fmt: skip
    _refresh()
    assert _money(acme) == {1: (1, Decimal(10))}
    assert _money(globex) == {1: (1, Decimal(1000))}


@pytest.mark.django_db
def test_a_late_click_does_not_move_an_attributed_order_a_rebuild_does(acme: Workspace) -> None:
    person = contact(acme)
    event(_mail(acme, person, 1), "opened", NOW - 2 * DAY)
    order(acme, person, NOW, 30)
    _refresh()
    assert _money(acme) == {1: (1, Decimal(30))}
    # The click happened before the order, but its event arrives after the order was read.
    event(_mail(acme, person, 2), "clicked", NOW - DAY)
    _refresh()
    assert _money(acme) == {1: (1, Decimal(30))}
    rollups_rebuild(workspace=acme)
    assert _money(acme) == {2: (1, Decimal(30))}


@pytest.mark.django_db
def test_the_workspaces_windows_decide(
    acme: Workspace, django_capture_on_commit_callbacks: object, run_tasks_now: None
) -> None:
    person = contact(acme)
    event(_mail(acme, person, 1), "clicked", NOW - 3 * DAY)
    event(_mail(acme, person, 2), "opened", NOW - 2 * DAY)
    order(acme, person, NOW, 12)
    _refresh()
    assert _money(acme) == {1: (1, Decimal(12))}
    # A two-day click window: the click is too old, the open still counts.
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        attribution_settings_save(workspace=acme, click_days=2, open_days=5)
    assert _money(acme) == {2: (1, Decimal(12))}
    # Opens off too: nothing.
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        attribution_settings_save(workspace=acme, click_days=2, open_days=0)
    assert _money(acme) == {}
    assert AttributionSettings.objects.get(workspace=acme).open_days == 0
