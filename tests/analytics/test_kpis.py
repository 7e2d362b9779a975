"""Each number on a hand-built send log, with the value worked out by hand: machine opens and
scanner clicks left out, two opens of one message counted once, tests and unsent mail left
out, rates over delivered (over sent when no delivery is reported)."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics import selectors
from analytics.kpis import Totals, change
from analytics.live import live_totals
from analytics.rollups import rollups_refresh
from esp.models import Workspace
from tests.analytics.helpers import event, message

SENT = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
DAY = SENT.date()


def minutes(n: float) -> dt.datetime:
    return SENT + dt.timedelta(minutes=n)


@pytest.fixture
def hand_built(acme: Workspace) -> Workspace:
    m1 = message(acme, sent_at=SENT)  # delivered, opened twice by a person, clicked
    event(m1, "delivered", minutes(1))
    event(m1, "opened", minutes(30))
    event(m1, "opened", minutes(90))
    event(m1, "clicked", minutes(31))
    m2 = message(acme, sent_at=SENT)  # delivered, opened only by Apple's proxy
    event(m2, "delivered", minutes(1))
    event(m2, "opened", minutes(2), machine=True)
    m3 = message(acme, sent_at=SENT)  # delivered, its link followed by a scanner only
    event(m3, "delivered", minutes(1))
    event(m3, "clicked", minutes(1.1), machine=True)
    m4 = message(acme, sent_at=SENT)  # delivered, opened, unsubscribed
    event(m4, "delivered", minutes(1))
    event(m4, "opened", minutes(60))
    event(m4, "unsubscribed", minutes(61))
    m5 = message(acme, sent_at=SENT)  # hard bounce
    event(m5, "bounced", minutes(1))
    m6 = message(acme, sent_at=SENT)  # deferred, soft-bounced, then delivered after all
    event(m6, "deferred", minutes(1))
    event(m6, "soft_bounced", minutes(20))
    event(m6, "delivered", minutes(120))
    m7 = message(acme, sent_at=SENT)  # delivered, complaint
    event(m7, "delivered", minutes(1))
    event(m7, "complained", minutes(200))
    message(acme, sent_at=SENT)  # m8: sent, nothing heard
    m11 = message(acme, sent_at=SENT)  # delivered, opened by a person and by a machine
    event(m11, "delivered", minutes(1))
    event(m11, "opened", minutes(2), machine=True)
    event(m11, "opened", minutes(300))
    test = message(acme, source="test:abc", sent_at=SENT)  # "send test to me": not a report's
    event(test, "delivered", minutes(1))
    event(test, "opened", minutes(5))
    message(acme, sent_at=None)  # skipped: never went out
    return acme


EXPECTED = Totals(
    sent=9,  # m1–m8, m11
    delivered=7,  # m1, m2, m3, m4, m6, m7, m11
    bounced=2,  # m5 hard, m6 soft
    bounced_hard=1,
    bounced_soft=1,
    deferred=1,
    opened=3,  # m1 (twice: once), m4, m11 — not m2 (proxy) nor m3 (scanner)
    opened_all=5,  # and m2, m3
    clicked=1,  # m1 — not m3's scanner
    clicked_machine=1,  # m3
    complained=1,
    unsubscribed=1,
)


@pytest.mark.django_db
def test_each_counter_on_a_hand_built_send_log(hand_built: Workspace) -> None:
    rollups_refresh()
    assert selectors.totals(workspace=hand_built, start=DAY, end=DAY) == EXPECTED
    assert live_totals(workspace=hand_built, since=DAY, until=DAY) == EXPECTED


@pytest.mark.django_db
def test_each_rate_by_hand(hand_built: Workspace) -> None:
    rollups_refresh()
    totals = selectors.totals(workspace=hand_built, start=DAY, end=DAY)
    assert totals.rate_base == "delivered"
    assert totals.delivery_rate == pytest.approx(7 / 9)
    assert totals.bounce_rate == pytest.approx(2 / 9)
    assert totals.open_rate == pytest.approx(3 / 7)
    assert totals.open_rate_all == pytest.approx(5 / 7)
    assert totals.click_rate == pytest.approx(1 / 7)
    assert totals.click_to_open == pytest.approx(1 / 3)
    assert totals.unsubscribe_rate == pytest.approx(1 / 7)
    assert totals.complaint_rate == pytest.approx(1 / 7)


@pytest.mark.django_db
def test_rates_over_sent_when_the_provider_reports_no_delivery(acme: Workspace) -> None:
    for n in range(4):
        m = message(acme, sent_at=SENT)
        if n == 0:
            event(m, "opened", minutes(30))
    rollups_refresh()
    totals = selectors.totals(workspace=acme, start=DAY, end=DAY)
    assert (totals.sent, totals.delivered, totals.opened) == (4, 0, 1)
    assert totals.rate_base == "sent"
    assert totals.open_rate == pytest.approx(1 / 4)
    assert totals.delivery_rate is None


def test_no_rate_without_a_base_and_changes() -> None:
    empty = Totals()
    assert empty.open_rate is None and empty.click_to_open is None and empty.bounce_rate is None
    assert change(15, 10) == pytest.approx(0.5)
    assert change(5, 0) is None and change(None, 3) is None


@pytest.mark.django_db
def test_a_second_open_later_counts_once_and_a_late_event_lands_on_its_day(hand_built: Workspace) -> None:
    rollups_refresh()
    from campaigns.models import Message

    m1, m8 = Message.objects.filter(workspace=hand_built, source="broadcast:1").order_by("pk")[0:8:7]
    event(m1, "opened", SENT + dt.timedelta(days=3))  # opened again three days later
    event(m8, "delivered", SENT + dt.timedelta(days=2))  # a late delivery report
    event(m8, "opened", SENT + dt.timedelta(days=2, hours=1))
    rollups_refresh()
    totals = selectors.totals(workspace=hand_built, start=DAY, end=DAY)
    assert (totals.opened, totals.delivered, totals.sent) == (4, 8, 9)
    later = selectors.totals(workspace=hand_built, start=DAY + dt.timedelta(days=1), end=DAY + dt.timedelta(days=5))
    assert later == Totals()
