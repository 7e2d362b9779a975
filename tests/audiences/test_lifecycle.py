"""Lifecycle stages: each stage from order events, thresholds from the workspace's settings,
defaults derived from its own median purchase interval (with floors and ceilings), time passing,
and the lifecycle page (counts, thresholds editable by marketers, a stage as a segment)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from audiences.facts import insight_figures_refresh, lifecycle_refresh, lifecycle_thresholds, purchase_facts_refresh
from audiences.insights.selectors import lifecycle_counts
from audiences.models import Contact, CustomerFacts, LifecycleSettings, LifecycleStage, Segment
from audiences.services import contact_save
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import member, order_event, refund_event

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def _contact(workspace: Workspace, email: str) -> Contact:
    return contact_save(workspace=workspace, data={"email": email})[0]


def _buyer(workspace: Workspace, name: str, *days_ago: int) -> Contact:
    contact = _contact(workspace, f"{name}@example.com")
    for n, days in enumerate(days_ago):
        order_event(contact, f"{name}-{n}", 10, NOW - timedelta(days=days))
    return contact


def _stage(contact: Contact) -> str:
    facts = CustomerFacts.objects.filter(pk=contact.pk).first()
    return facts.lifecycle_stage if facts else LifecycleStage.PROSPECT


@pytest.fixture
def journey(acme: Workspace) -> dict[str, Contact]:
    """One contact per stage under the default thresholds (no usable median yet: at risk after
    90 days, lapsed after 180; loyal from 4 orders)."""
    contacts = {
        "prospect": _contact(acme, "prospect@example.com"),
        "first_time": _buyer(acme, "first", 10),
        "repeat": _buyer(acme, "repeat", 40, 10),
        "loyal": _buyer(acme, "loyal", 90, 60, 30, 5),
        "at_risk": _buyer(acme, "risk", 130, 100),
        "lapsed": _buyer(acme, "lapsed", 200),
        "refunded": _buyer(acme, "refunded", 3),
    }
    refund_event(contacts["refunded"], "refunded-0", NOW - timedelta(days=1))
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[c.pk for c in contacts.values()], now=NOW)
    return contacts


def test_each_stage_with_the_default_thresholds(acme: Workspace, journey: dict[str, Contact]) -> None:
    thresholds = lifecycle_thresholds(workspace_id=acme.pk)
    assert (thresholds.at_risk_after_days, thresholds.lapsed_after_days, thresholds.loyal_min_orders) == (90, 180, 4)
    assert thresholds.interval.median_days is None  # 3 repeat customers: fewer than the 5 needed
    assert {name: _stage(contact) for name, contact in journey.items()} == {
        "prospect": LifecycleStage.PROSPECT,
        "first_time": LifecycleStage.FIRST_TIME,
        "repeat": LifecycleStage.REPEAT,
        "loyal": LifecycleStage.LOYAL,
        "at_risk": LifecycleStage.AT_RISK,
        "lapsed": LifecycleStage.LAPSED,
        "refunded": LifecycleStage.PROSPECT,  # its only order was refunded in full
    }
    insight_figures_refresh(workspace_id=acme.pk)
    counts = {row.stage: row.count for row in lifecycle_counts(workspace=acme)}
    assert counts == {"prospect": 2, "first_time": 1, "repeat": 1, "loyal": 1, "at_risk": 1, "lapsed": 1}


def test_thresholds_from_settings(acme: Workspace, journey: dict[str, Contact]) -> None:
    LifecycleSettings.objects.create(workspace=acme, loyal_min_orders=2, at_risk_after_days=7, lapsed_after_days=60)
    # first_time (10 days) and repeat (10 days) → at risk; at_risk (100 days) → lapsed.
    assert lifecycle_refresh(workspace_id=acme.pk, now=NOW) == 3
    assert {name: _stage(contact) for name, contact in journey.items()} == {
        "prospect": LifecycleStage.PROSPECT,
        "first_time": LifecycleStage.AT_RISK,
        "repeat": LifecycleStage.AT_RISK,
        "loyal": LifecycleStage.LOYAL,  # 4 orders ≥ 2, last 5 days ago
        "at_risk": LifecycleStage.LAPSED,
        "lapsed": LifecycleStage.LAPSED,
        "refunded": LifecycleStage.PROSPECT,
    }
    assert lifecycle_refresh(workspace_id=acme.pk, now=NOW) == 0  # nothing left to change


def test_time_alone_moves_a_customer(acme: Workspace) -> None:
    ann = _buyer(acme, "ann", 80)
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[ann.pk], now=NOW)
    assert _stage(ann) == LifecycleStage.FIRST_TIME
    assert lifecycle_refresh(workspace_id=acme.pk, now=NOW + timedelta(days=10)) == 1
    assert _stage(ann) == LifecycleStage.AT_RISK
    lifecycle_refresh(workspace_id=acme.pk, now=NOW + timedelta(days=100))
    assert _stage(ann) == LifecycleStage.LAPSED


def _repeat_customers(workspace: Workspace, *medians: float) -> None:
    for n, median in enumerate(medians):
        contact = _contact(workspace, f"m{n}-{median}@example.com")
        CustomerFacts.objects.create(
            contact=contact,
            workspace=workspace,
            orders_count=2,
            revenue=Decimal(20),
            last_order_at=NOW,
            median_days_between_orders=median,
        )


@pytest.mark.parametrize(
    ("medians", "expected_median", "at_risk", "lapsed"),
    [
        ((10, 20, 30, 40, 50), 30.0, 60, 120),  # 2× and 4× the median
        ((10, 20, 30, 40), None, 90, 180),  # too few repeat customers: the fixed defaults
        ((1, 2, 3, 4, 5), 3.0, 30, 60),  # the floor: never at risk within 30 days
        ((300, 300, 300, 300, 300), 300.0, 365, 730),  # the ceiling
        ((10, 11, 12.5, 20, 20), 12.5, 30, 60),  # 25 days is under the floor
        ((20, 20, 22.2, 40, 40), 22.2, 45, 90),  # rounded up: 44.4 → 45
    ],
)
def test_defaults_derived_from_the_workspace_median(
    acme: Workspace,
    globex: Workspace,
    medians: tuple[float, ...],
    expected_median: float | None,
    at_risk: int,
    lapsed: int,
) -> None:
    _repeat_customers(acme, *medians)
    _repeat_customers(globex, 1000, 1000, 1000, 1000, 1000)  # another workspace's customers count not
    thresholds = lifecycle_thresholds(workspace_id=acme.pk, fresh=True)
    assert thresholds.interval.median_days == (pytest.approx(expected_median) if expected_median else None)
    assert (thresholds.at_risk_after_days, thresholds.lapsed_after_days) == (at_risk, lapsed)
    assert (thresholds.derived_at_risk_after_days, thresholds.derived_lapsed_after_days) == (at_risk, lapsed)
    assert thresholds.at_risk_is_derived and thresholds.lapsed_is_derived


def test_one_threshold_set_the_other_derived(acme: Workspace) -> None:
    _repeat_customers(acme, 30, 30, 30, 30, 30)  # derived: at risk after 60, lapsed after 120
    settings = LifecycleSettings.objects.create(workspace=acme, at_risk_after_days=10)
    thresholds = lifecycle_thresholds(workspace_id=acme.pk, fresh=True)
    assert (thresholds.at_risk_after_days, thresholds.lapsed_after_days) == (10, 20)  # lapsed: twice at risk
    settings.at_risk_after_days, settings.lapsed_after_days = None, 40
    settings.save()
    thresholds = lifecycle_thresholds(workspace_id=acme.pk)
    # A derived at-risk threshold (60) beyond the lapsed one set by hand is halved.
    assert (thresholds.at_risk_after_days, thresholds.lapsed_after_days) == (20, 40)
    assert thresholds.at_risk_is_derived and not thresholds.lapsed_is_derived


def test_derived_thresholds_apply_to_stages(acme: Workspace) -> None:
    _repeat_customers(acme, 10, 10, 10, 10, 10)  # median 10 → at risk after 30 days, lapsed after 60
    bob = _buyer(acme, "bob", 45)
    lifecycle_refresh(workspace_id=acme.pk, now=NOW)  # refreshes the cached median too
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[bob.pk], now=NOW)
    assert _stage(bob) == LifecycleStage.AT_RISK


def test_page_shows_counts_median_and_thresholds(acme: Workspace, journey: dict[str, Contact]) -> None:
    insight_figures_refresh(workspace_id=acme.pk)
    viewer = logged_in(member(acme, Role.VIEWER))
    page = viewer.get("/audience/lifecycle/").content.decode()
    counts = dict(re.findall(r'data-stage="(\w+)"><td>[^<]+</td><td>(\d+)</td>', page))
    assert counts == {
        "prospect": "2", "first_time": "1", "repeat": "1", "loyal": "1", "at_risk": "1", "lapsed": "1",
    }  # fmt: skip
    assert "at risk after 90 days without an order, lapsed after 180 days" in page
    assert "Not enough repeat customers yet (3)" in page
    assert 'id="lifecycle-data"' in page and "chart.umd.min.js" in page
    assert "Save thresholds" not in page and "Open as segment" not in page


def test_marketer_edits_thresholds_viewer_cannot(
    acme: Workspace, journey: dict[str, Contact], run_tasks_now: None, django_capture_on_commit_callbacks: object
) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    assert viewer.post("/audience/lifecycle/", {"loyal_min_orders": 2}).status_code == 403
    assert not LifecycleSettings.objects.filter(workspace=acme).exists()

    marketer = logged_in(member(acme, Role.MARKETER))
    bad = marketer.post(
        "/audience/lifecycle/", {"loyal_min_orders": 3, "at_risk_after_days": 50, "lapsed_after_days": 50}
    )
    assert bad.status_code == 400 and "Must be more days than" in bad.content.decode()
    assert marketer.post("/audience/lifecycle/", {"loyal_min_orders": 1}).status_code == 400

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = marketer.post(
            "/audience/lifecycle/", {"loyal_min_orders": 2, "at_risk_after_days": 7, "lapsed_after_days": ""}
        )
    assert response.status_code == 302
    settings = LifecycleSettings.objects.get(workspace=acme)
    assert (settings.loyal_min_orders, settings.at_risk_after_days, settings.lapsed_after_days) == (2, 7, None)
    # The queued refresh ran: at risk after 7 days, lapsed after 14.
    assert _stage(journey["first_time"]) == LifecycleStage.AT_RISK
    assert _stage(journey["at_risk"]) == LifecycleStage.LAPSED
    assert _stage(journey["loyal"]) == LifecycleStage.LOYAL
    page = marketer.get("/audience/lifecycle/").content.decode()
    assert "at risk after 7 days without an order, lapsed after 14 days" in page


def test_a_stage_opens_as_a_segment(acme: Workspace, acme_client: Client, journey: dict[str, Contact]) -> None:
    from audiences.segments.compiler import segment_queryset

    response = acme_client.post("/audience/lifecycle/segment/", {"stage": "loyal"})
    segment = Segment.objects.get(workspace=acme)
    assert response.status_code == 302 and response["Location"].endswith(f"/{segment.pk}/")
    assert segment.rules["conditions"] == [{"kind": "lifecycle_stage", "operator": "in", "value": ["loyal"]}]
    assert list(segment_queryset(workspace=acme, rules=segment.rules)) == [journey["loyal"]]
    prospects = acme_client.post("/audience/lifecycle/segment/", {"stage": "prospect"})
    prospect_segment = Segment.objects.get(pk=int(prospects["Location"].rstrip("/").rsplit("/", 1)[1]))
    members = set(segment_queryset(workspace=acme, rules=prospect_segment.rules))
    assert members == {journey["prospect"], journey["refunded"]}  # with and without a facts row
    assert acme_client.post("/audience/lifecycle/segment/", {"stage": "nope"}).status_code == 302
    assert Segment.objects.filter(workspace=acme).count() == 2


def test_the_page_reads_stored_counts_and_a_marketer_recounts(
    acme: Workspace, journey: dict[str, Contact], run_tasks_now: None, django_capture_on_commit_callbacks: object
) -> None:
    marketer = logged_in(member(acme, Role.MARKETER))
    page = marketer.get("/audience/lifecycle/").content.decode()
    assert "Not counted yet" in page and "Recount now" in page
    contact_save(workspace=acme, data={"email": "new-prospect@example.com"})
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        assert marketer.post("/audience/lifecycle/", {"recount": "1"}).status_code == 302
    page = marketer.get("/audience/lifecycle/").content.decode()
    counts = dict(re.findall(r'data-stage="(\w+)"><td>[^<]+</td><td>(\d+)</td>', page))
    assert counts["prospect"] == "3" and counts["loyal"] == "1" and "Counted " in page

    contact_save(workspace=acme, data={"email": "later@example.com"})  # counted by the next run
    page = marketer.get("/audience/lifecycle/").content.decode()
    assert dict(re.findall(r'data-stage="(\w+)"><td>[^<]+</td><td>(\d+)</td>', page))["prospect"] == "3"
    assert logged_in(member(acme, Role.VIEWER)).post("/audience/lifecycle/", {"recount": "1"}).status_code == 403
