"""The Overview page, its CSV files and the reports API: figures from the rollups, the period
in the URL, bad input a 400 with a clear message (never a 500), viewers may read, and one
workspace never sees another's figures."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.rollups import rollups_refresh
from campaigns.broadcast_models import Broadcast
from esp.models import Role, Workspace
from tests.analytics.helpers import event, message
from tests.conftest import key_client, logged_in
from tests.factories import api_key, member


def _sent_today(workspace: Workspace, name: str, opened: int, total: int) -> Broadcast:
    broadcast = Broadcast.objects.create(workspace=workspace, name=name)
    now = timezone.now() - dt.timedelta(minutes=5)
    for n in range(total):
        m = message(workspace, source=f"broadcast:{broadcast.pk}", sent_at=now)
        event(m, "delivered", now)
        if n < opened:
            event(m, "opened", now + dt.timedelta(minutes=1))
    return broadcast


@pytest.fixture
def reported(acme: Workspace, globex: Workspace) -> Broadcast:
    broadcast = _sent_today(acme, "Spring sale", opened=2, total=4)
    _sent_today(globex, "Globex secret launch", opened=1, total=3)
    rollups_refresh()
    return broadcast


@pytest.mark.django_db
def test_overview_shows_the_periods_figures_and_only_its_workspaces(acme: Workspace, reported: Broadcast) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    response = viewer.get("/reports/?period=7d")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Spring sale" in page and "Globex secret launch" not in page
    assert 'data-kpi="sent"' in page and "50.0 %" in page  # 2 of 4 delivered opened
    assert "Rates are over delivered messages." in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["period=custom&from=2026-13-01", "period=custom&from=2026-03-10&to=2026-03-01", "period=nope",
     "grain=hour", "period=custom&from=1990-01-01&to=2026-01-01", "period=month&month=March"],
)  # fmt: skip
def test_a_bad_period_is_a_400_with_the_reason_on_its_field(acme_client: Client, query: str) -> None:
    response = acme_client.get(f"/reports/?{query}")
    assert response.status_code == 400
    assert b'class="error"' in response.content or b"form-errors" in response.content
    assert acme_client.get(f"/reports/export/?table=summary&{query}").status_code == 400


@pytest.mark.django_db
def test_every_table_downloads_as_csv(acme_client: Client, reported: Broadcast) -> None:
    for table in ("summary", "timeline", "broadcasts", "series"):
        response = acme_client.get(f"/reports/export/?period=30d&table={table}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0]
    broadcasts = list(
        csv.DictReader(io.StringIO(acme_client.get("/reports/export/?table=broadcasts").content.decode()))
    )
    assert [(b["name"], b["sent"], b["opened"], b["open_rate_percent"]) for b in broadcasts] == [
        ("Spring sale", "4", "2", "50.00")
    ]
    assert acme_client.get("/reports/export/?table=nope").status_code == 400


@pytest.mark.django_db
def test_the_period_in_the_url_names_the_report(acme_client: Client) -> None:
    page = acme_client.get("/reports/?period=month&month=2026-02&grain=week").content.decode()
    assert 'value="2026-02"' in page
    assert "table=timeline" in page and "month=2026-02" in page


@pytest.mark.django_db
def test_api_overview_with_a_reports_key(acme: Workspace, reported: Broadcast) -> None:
    client = key_client(api_key(acme, scopes=["reports:read"]))
    today = timezone.now().astimezone(acme.zone).date()
    answer = client.get(f"/api/v1/reports/overview?from={today - dt.timedelta(days=6)}&to={today}")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["figures"]["counters"]["sent"] == 4
    assert body["figures"]["rates"]["open_rate"] == pytest.approx(0.5)
    assert body["figures"]["rate_base"] == "delivered"
    assert [b["name"] for b in body["top_broadcasts"]] == ["Spring sale"]
    assert len(body["timeline"]) == 7
    one = client.get(f"/api/v1/reports/broadcasts/{reported.pk}").json()
    assert one["figures"]["counters"]["opened"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["from=2026-02-30", "from=2026-03-10&to=2026-03-01", "grain=hour", "since=2026-01-01"]
)
def test_api_bad_dates_are_400s_by_field(acme_api: APIClient, query: str) -> None:
    answer = acme_api.get(f"/api/v1/reports/overview?{query}")
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"]


@pytest.mark.django_db
def test_api_needs_the_reports_scope(acme: Workspace) -> None:
    client = key_client(api_key(acme, scopes=["contacts:read"]))
    assert client.get("/api/v1/reports/overview").status_code == 403


@pytest.mark.django_db
def test_api_another_workspaces_broadcast_is_a_404(acme_api: APIClient, globex: Workspace) -> None:
    theirs = Broadcast.objects.create(workspace=globex, name="theirs")
    assert acme_api.get(f"/api/v1/reports/broadcasts/{theirs.pk}").status_code == 404
