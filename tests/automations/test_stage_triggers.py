"""Lifecycle and RFM triggers: audiences tells (contacts_stage_changed, after commit, from the
facts refresh, the lifecycle refresh and the RFM scoring) and the series whose trigger is that
stage or segment enroll those contacts, set-based."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audiences import hooks
from audiences.facts import lifecycle_refresh, purchase_facts_refresh, rfm_score
from audiences.models import CustomerFacts, LifecycleSettings, LifecycleStage
from automations.engine.stages import contacts_stage_changed
from automations.models import Enrollment
from automations.services import SeriesInput, series_create
from automations.trigger_kinds import describe_trigger
from campaigns.models import EmailTemplate
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, messages
from tests.factories import order_event

pytestmark = pytest.mark.usefixtures("clock", "run_tasks_now")


def _series(acme: Workspace, templates: dict[str, EmailTemplate], trigger: dict[str, Any]) -> Any:
    return live_series(acme, [{"key": "hello", "type": "send", "template": templates["thanks"].pk}], trigger=trigger)


def _entered(series: Any) -> set[str]:
    return set(Enrollment.objects.filter(series=series).values_list("contact__email", flat=True))


def test_a_first_order_enrolls_in_the_first_time_customer_series(
    acme: Workspace, globex: Workspace, templates: dict[str, EmailTemplate], django_capture_on_commit_callbacks: Any
) -> None:
    first = _series(acme, templates, {"type": "lifecycle", "stage": "first_time"})
    repeat = _series(acme, templates, {"type": "lifecycle", "stage": "repeat"})
    ann = contact(acme, "ann@example.com")
    bob = contact(acme, "bob@example.com")
    now = dt.datetime.now(dt.UTC)
    order_event(ann, "a1", 40, now - dt.timedelta(days=1))
    order_event(bob, "b1", 40, now - dt.timedelta(days=20))
    order_event(bob, "b2", 60, now - dt.timedelta(days=2))
    heard: list[hooks.ContactsStageChanged] = []
    hooks.contacts_stage_changed.subscribe(heard.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[ann.pk, bob.pk], now=now)
    finally:
        hooks.contacts_stage_changed.unsubscribe(heard.append)
    assert {(p.field, p.value, p.contact_ids) for p in heard} == {
        ("lifecycle_stage", "first_time", (ann.pk,)),
        ("lifecycle_stage", "repeat", (bob.pk,)),
    }
    assert _entered(first) == {"ann@example.com"}
    assert _entered(repeat) == {"bob@example.com"}
    assert len(messages(ann)) == 1
    assert Enrollment.objects.get(contact=ann).entry_data == {"lifecycle_stage": "first_time"}

    # The same facts again change nothing: no one is told, no one enters twice.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[ann.pk, bob.pk], now=now)
    assert callbacks == []


def test_time_alone_makes_a_customer_at_risk(
    acme: Workspace, templates: dict[str, EmailTemplate], django_capture_on_commit_callbacks: Any
) -> None:
    LifecycleSettings.objects.create(workspace=acme, at_risk_after_days=30, lapsed_after_days=90)
    at_risk = _series(acme, templates, {"type": "lifecycle", "stage": "at_risk"})
    cat = contact(acme, "cat@example.com")
    now = dt.datetime.now(dt.UTC)
    order_event(cat, "c1", 40, now - dt.timedelta(days=40))
    with django_capture_on_commit_callbacks(execute=True):
        purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[cat.pk], now=now - dt.timedelta(days=20))
    assert _entered(at_risk) == set()
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle_refresh(workspace_id=acme.pk, now=now) == 1
    assert CustomerFacts.objects.get(contact=cat).lifecycle_stage == LifecycleStage.AT_RISK
    assert _entered(at_risk) == {"cat@example.com"}


def test_moving_into_an_rfm_segment_enrolls(
    acme: Workspace, templates: dict[str, EmailTemplate], django_capture_on_commit_callbacks: Any
) -> None:
    now = dt.datetime.now(dt.UTC)
    people = []
    for i in range(6):
        person = contact(acme, f"r{i}@example.com")
        for n in range(i + 1):
            order_event(person, f"{i}-{n}", 10 * (i + 1), now - dt.timedelta(days=200 - 30 * i + n))
        people.append(person)
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[p.pk for p in people], now=now)
    with django_capture_on_commit_callbacks(execute=False):
        rfm_score(workspace_id=acme.pk, now=now)  # to learn the segments; nobody is told
    segments = dict(CustomerFacts.objects.filter(workspace=acme).values_list("contact__email", "rfm_segment"))
    wanted = segments["r5@example.com"]
    CustomerFacts.objects.filter(workspace=acme).update(rfm_segment="", recency_score=None)
    series = _series(acme, templates, {"type": "rfm", "segment": wanted})
    with django_capture_on_commit_callbacks(execute=True):
        rfm_score(workspace_id=acme.pk, now=now)
    assert _entered(series) == {email for email, segment in segments.items() if segment == wanted}


def test_a_stage_that_moved_on_before_the_task_ran_enrolls_nobody(
    acme: Workspace, templates: dict[str, EmailTemplate]
) -> None:
    series = _series(acme, templates, {"type": "lifecycle", "stage": "at_risk"})
    dee = contact(acme, "dee@example.com")
    CustomerFacts.objects.create(contact=dee, workspace=acme, lifecycle_stage=LifecycleStage.REPEAT)
    assert (
        contacts_stage_changed(workspace_id=acme.pk, field="lifecycle_stage", value="at_risk", contact_ids=[dee.pk])
        == []
    )
    CustomerFacts.objects.filter(contact=dee).update(lifecycle_stage=LifecycleStage.AT_RISK)
    assert len(contacts_stage_changed(
        workspace_id=acme.pk, field="lifecycle_stage", value="at_risk", contact_ids=[dee.pk]
    )) == 1  # fmt: skip
    assert _entered(series) == {"dee@example.com"}


def test_the_triggers_are_checked_and_described(acme: Workspace) -> None:
    for trigger, path in (
        ({"type": "lifecycle", "stage": "sleepy"}, "trigger.stage"),
        ({"type": "rfm", "segment": "vip"}, "trigger.segment"),
        ({"type": "rfm", "segment": "lost", "colour": "red"}, "trigger.colour"),
    ):
        with pytest.raises(ValidationError) as caught:
            series_create(
                workspace=acme,
                data=SeriesInput(name="Bad", trigger=trigger, steps={"steps": [{"key": "x", "type": "exit"}]}),
            )
        assert path in caught.value.message_dict
    assert (
        describe_trigger({"type": "lifecycle", "stage": "at_risk"}) == "the contact's lifecycle stage becomes At risk"
    )
    assert describe_trigger({"type": "rfm", "segment": "champions"}) == (
        "the contact moves into the RFM segment Champions"
    )
