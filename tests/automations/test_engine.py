"""The series engine walked with the clock: triggers, steps, goals, re-entry, holdout, pause and
resume, versions. Every test moves time with the engine's clock; nothing sleeps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from automations.engine.events import contacts_left
from automations.models import Enrollment, EnrollmentState, ReEntry, TraceOutcome
from automations.services import (
    SeriesInput,
    enrollment_create,
    series_pause,
    series_publish,
    series_resume,
    series_update,
)
from campaigns.models import EmailTemplate, MessageState
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, messages, outcomes, send_all, tick, track

pytestmark = pytest.mark.usefixtures("clock")


def cart_series(acme: Workspace, templates: dict[str, EmailTemplate], **settings: Any) -> Any:
    """Abandoned cart: wait up to 1 h for this cart's order, else remind; keyed goal."""
    settings.setdefault("trigger", {"type": "event", "event": "Checkout Started", "key": "cart_id"})
    settings.setdefault("goal", {"event": "Order Completed", "key": "cart_id"})
    settings.setdefault("re_entry", ReEntry.ALWAYS)
    return live_series(
        acme,
        [
            {
                "key": "wait-order",
                "type": "wait_for_event",
                "event": "Order Completed",
                "key_property": "cart_id",
                "timeout_amount": 1,
                "timeout_unit": "hours",
                "yes": None,
                "no": "remind",
            },
            {"key": "remind", "type": "send", "template": templates["reminder"].pk, "next": "pause"},
            {"key": "pause", "type": "wait", "amount": 1, "unit": "days", "next": "coupon"},
            {"key": "coupon", "type": "send", "template": templates["coupon"].pk},
        ],
        **settings,
    )


def test_welcome_series_sends_waits_and_sends(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> None:
    live_series(
        acme,
        [
            {"key": "hello", "type": "send", "template": templates["welcome"].pk, "next": "two-days"},
            {"key": "two-days", "type": "wait", "amount": 2, "unit": "days", "next": "coupon"},
            {"key": "coupon", "type": "send", "template": templates["coupon"].pk},
        ],
    )
    ann = contact(acme, "ann@example.com", first_name="Ann")
    track(ann, "Signed Up")
    assert [m.template_id for m in messages(ann)] == [templates["welcome"].pk]
    send_all()
    enrollment = Enrollment.objects.get(contact=ann)
    assert enrollment.state == EnrollmentState.WAITING and enrollment.step_key == "two-days"

    clock.advance(days=1, hours=23)
    tick()
    assert len(messages(ann)) == 1
    clock.advance(hours=1)
    tick()
    assert [m.template_id for m in messages(ann)] == [templates["welcome"].pk, templates["coupon"].pk]
    enrollment.refresh_from_db()
    assert enrollment.state == EnrollmentState.COMPLETED
    assert [o[1] for o in outcomes(enrollment)] == ["entered", "sent", "waiting", "waited", "sent", "completed"]
    send_all()
    assert [m.state for m in messages(ann)] == [MessageState.SENT, MessageState.SENT]


def test_goal_arriving_during_a_wait_stops_further_mail(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    cart_series(acme, templates)
    bob = contact(acme, "bob@example.com")
    track(bob, "Checkout Started", cart_id="A")
    clock.advance(hours=2)
    tick()  # no order in time: the reminder goes
    assert len(messages(bob)) == 1
    clock.advance(hours=3)
    track(bob, "Order Completed", cart_id="A")
    enrollment = Enrollment.objects.get(contact=bob)
    assert enrollment.state == EnrollmentState.CONVERTED
    assert "Order Completed" in enrollment.end_reason
    clock.advance(days=2)
    tick()
    assert len(messages(bob)) == 1


def test_two_carts_the_first_carts_order_stops_only_the_first(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    cart_series(acme, templates)
    cid = contact(acme, "cid@example.com")
    track(cid, "Checkout Started", cart_id="A")
    track(cid, "Checkout Started", cart_id="B")
    assert Enrollment.objects.filter(contact=cid).count() == 2
    clock.advance(minutes=20)
    track(cid, "Order Completed", cart_id="A")
    a = Enrollment.objects.get(contact=cid, entry_key="A")
    b = Enrollment.objects.get(contact=cid, entry_key="B")
    assert a.state == EnrollmentState.CONVERTED
    assert b.state == EnrollmentState.WAITING
    clock.advance(hours=1)
    tick()
    b.refresh_from_db()
    assert [m.source for m in messages(cid)] == [f"step:{b.pk}:remind"]


def test_wait_for_event_answered_goes_yes(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> None:
    live_series(
        acme,
        [
            {
                "key": "viewed",
                "type": "wait_for_event",
                "event": "Product Viewed",
                "timeout_amount": 3,
                "timeout_unit": "days",
                "yes": "thanks",
                "no": None,
            },
            {"key": "thanks", "type": "send", "template": templates["thanks"].pk},
        ],
    )
    dee = contact(acme, "dee@example.com")
    track(dee, "Signed Up")
    clock.advance(hours=5)
    track(dee, "Product Viewed", sku="X1")
    enrollment = Enrollment.objects.get(contact=dee)
    assert enrollment.state == EnrollmentState.COMPLETED
    assert ("viewed", TraceOutcome.BRANCHED, "yes") in outcomes(enrollment)
    assert len(messages(dee)) == 1


def test_eight_identical_triggers_make_one_enrollment(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    cart_series(acme, templates)
    eve = contact(acme, "eve@example.com")
    for _ in range(8):
        track(eve, "Checkout Started", cart_id="A")
    assert Enrollment.objects.filter(contact=eve).count() == 1


def test_re_entry_rules(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> None:
    once = live_series(acme, [{"key": "s", "type": "send", "template": templates["welcome"].pk}], name="Once")
    period = live_series(
        acme, [{"key": "s", "type": "send", "template": templates["welcome"].pk}], name="Weekly",
        re_entry=ReEntry.PERIOD, re_entry_days=7,
    )  # fmt: skip
    always = live_series(
        acme,
        [{"key": "s", "type": "send", "template": templates["welcome"].pk}],
        name="Always",
        re_entry=ReEntry.ALWAYS,
    )
    fay = contact(acme, "fay@example.com")
    for _ in range(3):
        track(fay, "Signed Up")
        clock.advance(days=4)
    counts = {s.name: Enrollment.objects.filter(series=s, contact=fay).count() for s in (once, period, always)}
    assert counts == {"Once": 1, "Weekly": 2, "Always": 3}


def test_flow_filter_is_checked_at_entry_and_before_each_send(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    live_series(
        acme,
        [
            {"key": "first", "type": "send", "template": templates["welcome"].pk, "next": "later"},
            {"key": "later", "type": "wait", "amount": 1, "unit": "days", "next": "second"},
            {"key": "second", "type": "send", "template": templates["coupon"].pk},
        ],
        flow_filter={
            "match": "all",
            "conditions": [{"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"}],
        },
    )
    outsider = contact(acme, "out@example.com", country="FR")
    track(outsider, "Signed Up")
    assert not Enrollment.objects.filter(contact=outsider).exists()
    gus = contact(acme, "gus@example.com", country="DE")
    track(gus, "Signed Up")
    gus.country = "AT"
    gus.save()
    clock.advance(days=1)
    tick()
    enrollment = Enrollment.objects.get(contact=gus)
    assert enrollment.state == EnrollmentState.EXITED
    assert enrollment.end_reason == "no longer matches the flow filter"
    assert len(messages(gus)) == 1


def test_condition_branches_on_segment_rules(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    live_series(
        acme,
        [
            {
                "key": "vip",
                "type": "condition",
                "yes": "thanks",
                "no": "hello",
                "rules": {"match": "all", "conditions": [{"kind": "tag", "operator": "contains", "value": "vip"}]},
            },
            {"key": "thanks", "type": "send", "template": templates["thanks"].pk},
            {"key": "hello", "type": "send", "template": templates["welcome"].pk},
        ],
    )
    vip = contact(acme, "vip@example.com", tags=["vip"])
    plain = contact(acme, "plain@example.com")
    track(vip, "Signed Up")
    track(plain, "Signed Up")
    assert [m.template_id for m in messages(vip)] == [templates["thanks"].pk]
    assert [m.template_id for m in messages(plain)] == [templates["welcome"].pk]
    assert ("vip", TraceOutcome.BRANCHED, "yes") in outcomes(Enrollment.objects.get(contact=vip))


def test_random_split_sends_each_branch_about_its_share(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    live_series(
        acme,
        [
            {"key": "ab", "type": "split", "branches": [{"percent": 50, "next": "a"}, {"percent": 50, "next": "b"}]},
            {"key": "a", "type": "send", "template": templates["welcome"].pk},
            {"key": "b", "type": "send", "template": templates["coupon"].pk},
        ],
    )
    for n in range(200):
        track(contact(acme, f"p{n}@example.com"), "Signed Up")
    from campaigns.models import Message

    a = Message.objects.filter(template=templates["welcome"]).count()
    b = Message.objects.filter(template=templates["coupon"]).count()
    assert a + b == 200 and 70 < a < 130


def test_holdout_entrants_receive_nothing_and_are_traced(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    live_series(acme, [{"key": "s", "type": "send", "template": templates["welcome"].pk}], holdout_percent=50)
    people = [contact(acme, f"h{n}@example.com") for n in range(100)]
    for person in people:
        track(person, "Signed Up")
    held = Enrollment.objects.filter(holdout=True)
    assert 25 < held.count() < 75
    for enrollment in held:
        assert messages(enrollment.contact) == []
        assert ("s", TraceOutcome.HELD_OUT, "") in outcomes(enrollment)
    assert all(len(messages(e.contact)) == 1 for e in Enrollment.objects.filter(holdout=False))


def test_unsubscribe_mid_series_ends_it(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> None:
    cart_series(acme, templates)
    hal = contact(acme, "hal@example.com")
    track(hal, "Checkout Started", cart_id="A")
    contacts_left(workspace_id=acme.pk, contact_ids=[hal.pk], reason="unsubscribed")
    clock.advance(days=3)
    tick()
    enrollment = Enrollment.objects.get(contact=hal)
    assert enrollment.state == EnrollmentState.EXITED and enrollment.end_reason == "unsubscribed"
    assert messages(hal) == []


def test_pause_holds_and_resume_skips_stale_steps(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    series = cart_series(acme, templates)
    ivy = contact(acme, "ivy@example.com")
    track(ivy, "Checkout Started", cart_id="A")
    series_pause(workspace=acme, series_id=series.pk)
    clock.advance(days=3)
    tick()
    assert messages(ivy) == []
    series_resume(workspace=acme, series_id=series.pk, skip_older_than=dt.timedelta(hours=12))
    tick()
    enrollment = Enrollment.objects.get(contact=ivy)
    assert ("remind", TraceOutcome.SKIPPED, "") in outcomes(enrollment)
    assert messages(ivy) == []


def test_a_new_version_leaves_waiting_contacts_on_theirs(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    series = live_series(
        acme,
        [
            {"key": "pause", "type": "wait", "amount": 2, "unit": "days", "next": "mail"},
            {"key": "mail", "type": "send", "template": templates["welcome"].pk},
        ],
    )
    waiting = [contact(acme, f"w{n}@example.com") for n in range(1000)]
    from audiences.models import Contact
    from automations.engine.enroll import candidates_from_contacts, enrollments_insert
    from esp import clock as engine_clock

    sql, params = candidates_from_contacts(Contact.objects.filter(pk__in=[c.pk for c in waiting]))
    enrollments_insert(series, sql, params, engine_clock.now())
    tick()
    first = series.live_version
    series_update(
        workspace=acme, series_id=series.pk,
        data=SeriesInput(steps={"steps": [{"key": "mail", "type": "send", "template": templates["coupon"].pk}]}),
    )  # fmt: skip
    second = series_publish(workspace=acme, series_id=series.pk)
    latecomer = contact(acme, "late@example.com")
    track(latecomer, "Signed Up")
    clock.advance(days=2)
    tick()
    assert Enrollment.objects.filter(version=first).count() == 1000
    from campaigns.models import Message

    assert Message.objects.filter(template=templates["welcome"]).count() == 1000
    assert Message.objects.filter(template=templates["coupon"]).count() == 1
    assert Enrollment.objects.get(contact=latecomer).version == second


def test_api_enrollment_and_validation(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    series = live_series(
        acme, [{"key": "s", "type": "send", "template": templates["welcome"].pk}], trigger={"type": "api"}
    )
    jo = contact(acme, "jo@example.com")
    assert (
        enrollment_create(workspace=acme, series_id=series.pk, contact=jo, key="k1", data={"coupon": "X"}) is not None
    )
    assert enrollment_create(workspace=acme, series_id=series.pk, contact=jo, key="k1") is None


def test_the_step_graph_is_checked_with_paths(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    from automations.services import series_create

    with pytest.raises(ValidationError) as caught:
        series_create(
            workspace=acme,
            data=SeriesInput(
                name="Bad",
                steps={"steps": [
                    {"key": "a", "type": "send", "template": 999999, "next": "b"},
                    {"key": "b", "type": "condition", "rules": {"match": "all", "conditions": []},
                     "yes": "a", "no": "zz"},
                    {"key": "lost", "type": "wait", "amount": 1, "unit": "days", "colour": "red"},
                ]},
            ),
        )  # fmt: skip
    errors = caught.value.message_dict
    assert "steps[a].template" in errors
    assert "steps[b].no" in errors
    assert "steps[lost].colour" in errors
    with pytest.raises(ValidationError) as looped:
        series_create(
            workspace=acme,
            data=SeriesInput(
                name="Loop",
                steps={"steps": [
                    {"key": "a", "type": "send", "template": templates["welcome"].pk, "next": "b"},
                    {"key": "b", "type": "exit"},
                    {"key": "c", "type": "condition", "email": [{"step": "a", "action": "opened"}],
                     "yes": "c", "no": "c"},
                ]},
            ),
        )  # fmt: skip
    assert "steps[c]" in looped.value.message_dict
