"""Goals: the pace arithmetic by hand, growth targets against last year, the form's errors,
roles, and the report pages' bad input as a 400 (never a 500)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from analytics.goals.pace import Counted, days_elapsed, pace_compute
from analytics.goals.services import GoalInput, goal_progress, goal_save
from analytics.journey_models import Goal
from esp.models import Role, Workspace
from tests.conftest import key_client, logged_in
from tests.factories import api_key, member


def test_a_count_behind_its_target() -> None:
    # 300 orders in the first 30 of 90 days, target 1,200: 900 to go in 60 days = 15 a day;
    # the pace so far (10 a day) leads to 900: behind.
    pace = pace_compute(counted=Counted(300), target=1200, higher_is_better=True, elapsed_days=30, total_days=90)
    assert pace.current_pace == 10 and pace.needed == 15 and pace.forecast == 900
    assert pace.progress == 0.25 and pace.on_track is False and pace.reached is None


def test_a_count_already_past_its_target_is_reached() -> None:
    pace = pace_compute(counted=Counted(120), target=100, higher_is_better=True, elapsed_days=10, total_days=30)
    assert pace.reached is True and pace.needed == 0 and pace.forecast == 360


def test_a_rate_needs_this_rate_for_the_rest() -> None:
    # 20 clicks of 1,000 delivered in 10 of 30 days (2 %); target 3 %: the period will deliver
    # 3,000, so 90 clicks are needed, 70 of the 2,000 to come: 3.5 %.
    pace = pace_compute(counted=Counted(20, 1000), target=0.03, higher_is_better=True, elapsed_days=10, total_days=30)
    assert pace.current == 0.02 and pace.forecast == 0.02
    assert pace.needed == pytest.approx(0.035) and pace.on_track is False


def test_a_rate_that_must_stay_low() -> None:
    # Complaints 1 of 2,000 (0.05 %), target at most 0.1 %: on track; the rest may reach 0.125 %.
    pace = pace_compute(counted=Counted(1, 2000), target=0.001, higher_is_better=False, elapsed_days=20, total_days=30)
    assert pace.on_track is True and pace.needed == pytest.approx((0.001 * 3000 - 1) / 1000)


def test_days_elapsed() -> None:
    assert days_elapsed(dt.date(2026, 1, 1), dt.date(2026, 3, 31), dt.date(2026, 1, 10)) == (10, 90)
    assert days_elapsed(dt.date(2026, 1, 1), dt.date(2026, 3, 31), dt.date(2025, 12, 1)) == (0, 90)
    assert days_elapsed(dt.date(2026, 1, 1), dt.date(2026, 3, 31), dt.date(2027, 1, 1)) == (90, 90)


@pytest.mark.django_db
def test_a_growth_target_is_last_years_figure_plus_n_percent(acme: Workspace) -> None:
    from analytics.journey_models import AudienceDay

    AudienceDay.objects.create(workspace=acme, day=dt.date(2025, 2, 3), list_id=0, new=50)
    AudienceDay.objects.create(workspace=acme, day=dt.date(2026, 2, 3), list_id=0, new=30)
    goal = goal_save(
        workspace=acme,
        data=GoalInput(
            "More sign-ups", "new_contacts", "growth", Decimal(40), dt.date(2026, 1, 5), dt.date(2026, 3, 9)
        ),
    )
    assert (goal.start, goal.end) == (dt.date(2026, 1, 1), dt.date(2026, 3, 31))
    progress = goal_progress(workspace=acme, goal=goal, today=dt.date(2026, 2, 14))
    assert progress.baseline == 50 and progress.target == pytest.approx(70)
    assert progress.pace.current == 30 and progress.pace.elapsed_days == 45


@pytest.mark.django_db
def test_goal_form_errors_and_roles(acme: Workspace, acme_client: Client, globex: Workspace) -> None:
    bad = {
        "name": "",
        "kpi": "nope",
        "target_kind": "absolute",
        "target_value": "x",
        "start": "2026-13",
        "end": "2026-01",
    }
    response = acme_client.post("/reports/goals/new/", bad)
    assert response.status_code == 400 and b'class="error"' in response.content
    segment_on_messages = {"name": "Opens", "kpi": "open_rate", "target_kind": "absolute", "target_value": "30",
                           "start": "2026-01", "end": "2026-03", "segment": "999999"}  # fmt: skip
    response = acme_client.post("/reports/goals/new/", segment_on_messages)
    assert response.status_code == 400
    ok = {**segment_on_messages, "segment": ""}
    assert acme_client.post("/reports/goals/new/", ok).status_code == 302
    goal = Goal.objects.get(workspace=acme)
    page = acme_client.get("/reports/goals/").content.decode()
    assert "Opens" in page and "30.00 %" in page
    viewer = logged_in(member(acme, Role.VIEWER))
    assert viewer.get("/reports/goals/").status_code == 200
    assert viewer.get(f"/reports/goals/{goal.pk}/").status_code == 200
    assert viewer.post("/reports/goals/new/", ok).status_code == 403
    assert viewer.post(f"/reports/goals/{goal.pk}/delete/").status_code == 403
    assert acme_client.post(f"/reports/goals/{goal.pk}/delete/").status_code == 302
    assert not Goal.objects.filter(pk=goal.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["journey", "cohorts"])
@pytest.mark.parametrize("query", ["from=2026-13", "from=2026-05&to=2026-01", "from=1990-01", "to=2999-01"])
def test_bad_months_are_a_400(acme_client: Client, page: str, query: str) -> None:
    assert acme_client.get(f"/reports/{page}/?{query}").status_code == 400
    assert acme_client.get(f"/reports/{page}/export/?{query}").status_code == 400


@pytest.mark.django_db
def test_pages_csv_and_api_answer(acme: Workspace, acme_client: Client) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    for url in ("/reports/journey/", "/reports/cohorts/", "/reports/goals/", "/reports/deliverability/",
                "/reports/digest/"):  # fmt: skip
        assert viewer.get(url).status_code == 200, url
    for url, table in (("journey", "measures"), ("journey", "flows"), ("cohorts", "retention"), ("cohorts", "ltv")):
        response = acme_client.get(f"/reports/{url}/export/?table={table}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert acme_client.get("/reports/journey/export/?table=nope").status_code == 400
    assert acme_client.get("/reports/deliverability/?period=nope").status_code == 400
    assert acme_client.get("/reports/deliverability/export/?period=custom&from=2026-02-30").status_code == 400
    api = key_client(api_key(acme))
    for name in ("journey", "cohorts", "goals", "deliverability"):
        assert api.get(f"/api/v1/reports/{name}").status_code == 200, name
    assert api.get("/api/v1/reports/journey?from=2026-13").status_code == 400
    assert api.get("/api/v1/reports/deliverability?from=nope").status_code == 400
