"""Money on the pages and in the API: the Overview's cards and top lists by revenue, the
broadcast / series / template reports (figures, CSV, the money fragments the broadcast and
series pages load by URL), the attribution settings, the holdout lift on a hand-computed
example; bad input a 400 with the reason, never a 500; another workspace's report a 404."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from analytics.attribution import attribution_refresh
from analytics.kpis import Totals
from analytics.lift import Group, Lift, series_lift
from analytics.rollups import rollups_refresh
from automations.models import Enrollment, Series, SeriesVersion
from campaigns.broadcast_models import Broadcast
from esp.models import Role, Workspace
from tests.analytics.helpers import contact, event, message, order
from tests.conftest import key_client, logged_in
from tests.factories import EmailTemplateFactory, api_key, member


def _sold(workspace: Workspace, name: str, amounts: list[int]) -> Broadcast:
    """A broadcast sent an hour ago; each amount an order an its recipient placed after a click."""
    broadcast = Broadcast.objects.create(workspace=workspace, name=name, status="sent")
    now = timezone.now() - dt.timedelta(hours=1)
    template = EmailTemplateFactory(workspace=workspace, name=f"{name} email")
    for n in range(4):
        person = contact(workspace)
        m = message(workspace, source=f"broadcast:{broadcast.pk}", sent_at=now, contact=person, template=template)
        event(m, "delivered", now)
        if n < len(amounts):
            event(m, "clicked", now + dt.timedelta(minutes=5))
            order(workspace, person, now + dt.timedelta(minutes=30), amounts[n])
    return broadcast


@pytest.fixture
def sold(acme: Workspace, globex: Workspace) -> Broadcast:
    broadcast = _sold(acme, "Spring sale", [30, 90])
    _sold(globex, "Globex secret launch", [5000])
    rollups_refresh()
    attribution_refresh()
    return broadcast


@pytest.mark.django_db
def test_overview_shows_the_money(acme: Workspace, sold: Broadcast) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    page = viewer.get("/reports/?period=7d").content.decode()
    assert 'data-kpi="revenue"' in page and "€120.00" in page  # 30 + 90
    assert "€5,000.00" not in page and "Globex" not in page
    assert "€60.00" in page  # AOV: 120 / 2
    assert "50.0 %" in page  # conversion rate: 2 of 4 delivered
    rows = list(csv.DictReader(io.StringIO(viewer.get("/reports/export/?table=broadcasts").content.decode())))
    assert [(r["name"], r["conversions"], r["revenue"]) for r in rows] == [("Spring sale", "2", "120.00")]
    summary = {r["measure"]: r["period"] for r in csv.DictReader(
        io.StringIO(viewer.get("/reports/export/?table=summary").content.decode()))}  # fmt: skip
    assert summary["revenue_per_recipient"] == "30.0000" and summary["orders"] == "2"
    assert summary["email_share_percent"] == "100.00"


@pytest.mark.django_db
def test_the_broadcast_report_its_csv_and_the_fragment_of_the_broadcast_page(acme: Workspace, sold: Broadcast) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    page = viewer.get(f"/reports/broadcasts/{sold.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Spring sale" in text and "€120.00" in text and 'id="chart-money"' in text
    rows = {r["measure"]: r["period"] for r in csv.DictReader(
        io.StringIO(viewer.get(f"/reports/broadcasts/{sold.pk}/export/?table=summary").content.decode()))}  # fmt: skip
    assert (rows["sent"], rows["conversions"], rows["revenue"], rows["conversion_rate_percent"]) == (
        "4",
        "2",
        "120.00",
        "50.00",
    )
    fragment = viewer.get(f"/reports/broadcasts/{sold.pk}/money/").content.decode()
    assert "€120.00" in fragment and "<html" not in fragment
    # The broadcast's own page loads it by URL.
    assert f"/reports/broadcasts/{sold.pk}/money/" in viewer.get(f"/broadcasts/{sold.pk}/").content.decode()
    # Its template's report counts the same messages.
    template_id = (
        sold.workspace
        and acme.pk
        and __import__("campaigns.models").models.EmailTemplate.objects.get(workspace=acme, name="Spring sale email").pk
    )
    assert "€120.00" in viewer.get(f"/reports/templates/{template_id}/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["period=custom&from=2026-13-01", "period=nope", "grain=hour", "period=custom&from=2026-03-10&to=2026-03-01"],
)
def test_bad_input_on_the_source_reports_is_a_400(acme_client: Client, sold: Broadcast, query: str) -> None:
    assert acme_client.get(f"/reports/broadcasts/{sold.pk}/?{query}").status_code == 400
    assert acme_client.get(f"/reports/broadcasts/{sold.pk}/export/?{query}").status_code == 400
    assert acme_client.get(f"/reports/broadcasts/{sold.pk}/export/?table=steps").status_code == 400
    assert acme_client.get("/reports/broadcasts/99999999/").status_code == 404


@pytest.mark.django_db
def test_another_workspaces_reports_are_404(acme_client: Client, globex: Workspace, sold: Broadcast) -> None:
    theirs = Broadcast.objects.get(workspace=globex)
    for suffix in ("", "export/", "money/"):
        assert acme_client.get(f"/reports/broadcasts/{theirs.pk}/{suffix}").status_code == 404


@pytest.mark.django_db
def test_attribution_settings_form(acme: Workspace, acme_client: Client) -> None:
    owner = logged_in(member(acme, Role.OWNER))
    assert owner.get("/reports/attribution/").status_code == 200
    for bad in ({"click_days": "-1", "open_days": "5"}, {"click_days": "x", "open_days": "5"},
                {"click_days": "91", "open_days": "5"}, {}):  # fmt: skip
        response = owner.post("/reports/attribution/", bad)
        assert response.status_code == 400 and b'class="error"' in response.content
    assert owner.post("/reports/attribution/", {"click_days": "3", "open_days": "0"}).status_code == 302
    from analytics.models import AttributionSettings

    assert AttributionSettings.objects.get(workspace=acme).click_days == 3
    viewer = logged_in(member(acme, Role.VIEWER))
    assert viewer.get("/reports/attribution/").status_code == 200
    assert viewer.post("/reports/attribution/", {"click_days": "1", "open_days": "1"}).status_code == 403


@pytest.mark.django_db
def test_the_api_has_the_money_and_the_lift(acme: Workspace, sold: Broadcast) -> None:
    client = key_client(api_key(acme, scopes=["reports:read"]))
    body = client.get("/api/v1/reports/overview?grain=day").json()
    assert body["figures"]["money"]["revenue"] == "120.00" and body["figures"]["money"]["conversions"] == 2
    assert body["shop"]["orders"] == 2
    report = client.get(f"/api/v1/reports/broadcasts/{sold.pk}").json()
    assert report["figures"]["money"]["average_order_value"] == "60.00"
    assert client.get(f"/api/v1/reports/broadcasts/{sold.pk}?from=2026-13-01").status_code == 400


def test_lift_on_a_hand_computed_example() -> None:
    # Entrants 40, 12 ordered (30 %); held out 20, 2 ordered (10 %). Difference 0.20;
    # SE = √(0.3·0.7/40 + 0.1·0.9/20) = √0.00975 = 0.098742; margin 1.96 · SE = 0.193532.
    lift = Lift(Group(40, 12, Decimal(600), Decimal(12 * 50 * 50)), Group(20, 2, Decimal(100), Decimal(2 * 50 * 50)))
    c = lift.conversion
    assert c is not None
    assert round(c.difference, 6) == 0.2
    assert round(c.low, 4) == 0.0065 and round(c.high, 4) == 0.3935
    assert c.significant
    # Revenue per contact 15.00 against 5.00. s₁² = (30000 − 40·15²)/39 = 538.4615,
    # s₂² = (5000 − 20·5²)/19 = 236.8421; margin = 1.96 · √(13.4615 + 11.8421) = 9.8593.
    assert lift.entrants.revenue_per_contact == Decimal("15.00")
    r = lift.revenue
    assert r is not None and round(r.difference, 2) == 10.0
    assert round(r.low, 2) == 0.14 and round(r.high, 2) == 19.86
    # 200 at 15 % against 100 at 10 %: margin 1.96 · √(0.0006375 + 0.0009) = 0.076853, straddles 0.
    weak = Lift(Group(200, 30), Group(100, 10)).conversion
    assert weak is not None and not weak.significant
    assert round(weak.low, 4) == -0.0269 and round(weak.high, 4) == 0.1269
    assert Lift(Group(40, 12), Group(1, 0)).conversion is None  # too few held out


@pytest.mark.django_db
def test_lift_counts_orders_after_entry_of_entrants_and_held_out(acme: Workspace) -> None:
    series = Series.objects.create(workspace=acme, name="Welcome", holdout_percent=50)
    version = SeriesVersion.objects.create(workspace=acme, series=series, number=1, steps={"steps": []})
    now = timezone.now()
    entered = now - dt.timedelta(days=3)
    people = []
    for n in range(6):
        person = contact(acme)
        Enrollment.objects.create(workspace=acme, series=series, version=version, contact=person,
                                  holdout=n >= 4, entered_at=entered)  # fmt: skip
        people.append(person)
    # Entrants 0-3: two ordered after entering (20 and 40), one only before (not counted).
    order(acme, people[0], now - dt.timedelta(days=1), 20)
    order(acme, people[1], now - dt.timedelta(days=2), 40)
    order(acme, people[2], now - dt.timedelta(days=5), 99)
    # Held out 4-5: one ordered after entering (10), refunded in part (4).
    order(acme, people[4], now - dt.timedelta(days=1), 10, order_id="h-1")
    order(acme, people[4], now - dt.timedelta(hours=5), 4, order_id="h-1", name="Order Refunded")
    attribution_refresh()
    today = now.astimezone(acme.zone).date()
    lift = series_lift(workspace=acme, series=series, start=today - dt.timedelta(days=7), end=today)
    assert (lift.entrants.contacts, lift.entrants.converted, lift.entrants.revenue) == (4, 2, Decimal(60))
    assert (lift.holdout.contacts, lift.holdout.converted, lift.holdout.revenue) == (2, 1, Decimal(6))
    assert lift.entrants.conversion_rate == 0.5 and lift.holdout.revenue_per_contact == Decimal("3.00")
    viewer = logged_in(member(acme, Role.VIEWER))
    page = viewer.get(f"/reports/series/{series.pk}/?period=7d").content.decode()
    assert 'id="lift-table"' in page and "Not significant" in page
    assert Totals().revenue_per_recipient is None
