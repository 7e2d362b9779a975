"""The wait-until step: a local time of day on chosen weekdays, or a date of the contact ± days,
in the contact's time zone (else the workspace's), right across DST changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audiences.models import CustomField, FieldType
from automations.models import Enrollment, EnrollmentState, TraceOutcome
from automations.services import SeriesInput, series_create
from automations.steps import STEP_KINDS
from campaigns.models import EmailTemplate
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, messages, outcomes, tick, track

UTC = dt.UTC


def _series(acme: Workspace, templates: dict[str, EmailTemplate], **wait: Any) -> None:
    live_series(
        acme,
        [
            {"key": "until", "type": "wait_until", "next": "hello", **wait},
            {"key": "hello", "type": "send", "template": templates["welcome"].pk},
        ],
    )


def test_next_tuesday_at_ten_in_the_contacts_zone_across_the_spring_change(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    # Friday 26 March 2027; Berlin moves to summer time on Sunday the 28th.
    clock.freeze(dt.datetime(2027, 3, 26, 12, 0, tzinfo=UTC))
    _series(acme, templates, time="10:00", weekdays=[2, 4])
    ann = contact(acme, "ann@example.com", time_zone="Europe/Berlin")
    track(ann, "Signed Up")
    enrollment = Enrollment.objects.get(contact=ann)
    # Tuesday 30 March, 10:00 CEST is 08:00 UTC (it would be 09:00 UTC in winter time).
    assert enrollment.due_at == dt.datetime(2027, 3, 30, 8, 0, tzinfo=UTC)
    assert outcomes(enrollment)[-1][1] == TraceOutcome.WAITING
    clock.freeze(dt.datetime(2027, 3, 30, 7, 59, tzinfo=UTC))
    tick()
    assert messages(ann) == []
    clock.advance(minutes=1)
    tick()
    assert len(messages(ann)) == 1
    enrollment.refresh_from_db()
    assert enrollment.state == EnrollmentState.COMPLETED


def test_the_workspace_zone_when_the_contact_has_none_across_the_autumn_change(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    acme.time_zone = "America/New_York"
    acme.save()
    # Saturday 6 November 2027, 11:00 EDT; New York goes back to standard time that night.
    clock.freeze(dt.datetime(2027, 11, 6, 15, 0, tzinfo=UTC))
    _series(acme, templates, time="09:00")
    bob = contact(acme, "bob@example.com")
    track(bob, "Signed Up")
    # Sunday 09:00 EST is 14:00 UTC (not 13:00: the wall clock, not 24 hours, decides).
    assert Enrollment.objects.get(contact=bob).due_at == dt.datetime(2027, 11, 7, 14, 0, tzinfo=UTC)


def test_a_time_later_today_waits_for_today(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> None:
    clock.freeze(dt.datetime(2027, 6, 1, 6, 0, tzinfo=UTC))  # a Tuesday, 08:00 in Berlin
    _series(acme, templates, time="10:00", weekdays=[2])
    cat = contact(acme, "cat@example.com", time_zone="Europe/Berlin")
    track(cat, "Signed Up")
    assert Enrollment.objects.get(contact=cat).due_at == dt.datetime(2027, 6, 1, 8, 0, tzinfo=UTC)


def test_three_days_before_the_birthday_and_a_missing_date_goes_on(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    clock.freeze(dt.datetime(2027, 2, 1, 12, 0, tzinfo=UTC))
    _series(acme, templates, attribute="birth_date", offset_days=-3, time="09:00")
    # A leap-day birthday is kept on 28 February in other years.
    fay = contact(acme, "fay@example.com", birth_date=dt.date(1992, 2, 29))
    track(fay, "Signed Up")
    assert Enrollment.objects.get(contact=fay).due_at == dt.datetime(2027, 2, 25, 9, 0, tzinfo=UTC)

    clock.freeze(dt.datetime(2027, 3, 1, 12, 0, tzinfo=UTC))
    dee = contact(acme, "dee@example.com", time_zone="Europe/Berlin", birth_date=dt.date(1990, 4, 10))
    eve = contact(acme, "eve@example.com")
    track(dee, "Signed Up")
    track(eve, "Signed Up")
    assert Enrollment.objects.get(contact=dee).due_at == dt.datetime(2027, 4, 7, 7, 0, tzinfo=UTC)
    eve_enrollment = Enrollment.objects.get(contact=eve)
    assert ("until", TraceOutcome.SKIPPED, "") in outcomes(eve_enrollment)
    assert len(messages(eve)) == 1  # no date: it went on at once


def test_a_custom_date_that_has_passed_goes_on_and_a_coming_one_waits(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    CustomField.objects.create(workspace=acme, key="renews_on", label="Renews on", type=FieldType.DATE)
    clock.freeze(dt.datetime(2027, 5, 1, 12, 0, tzinfo=UTC))
    _series(acme, templates, attribute="renews_on", offset_days=-7, time="08:30")
    old = contact(acme, "old@example.com", attributes={"renews_on": "2027-05-03"})
    new = contact(acme, "new@example.com", attributes={"renews_on": "2027-06-01"})
    track(old, "Signed Up")
    track(new, "Signed Up")
    old_enrollment = Enrollment.objects.get(contact=old)
    assert old_enrollment.state == EnrollmentState.COMPLETED
    assert ("until", TraceOutcome.SKIPPED, "") in outcomes(old_enrollment)
    assert Enrollment.objects.get(contact=new).due_at == dt.datetime(2027, 5, 25, 8, 30, tzinfo=UTC)


def test_the_step_is_checked_and_described(acme: Workspace, clock: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        series_create(
            workspace=acme,
            data=SeriesInput(
                name="Bad waits",
                trigger={"type": "api"},
                steps={"steps": [
                    {"key": "a", "type": "wait_until", "time": "25:00", "weekdays": [0, 8], "next": "b"},
                    {"key": "b", "type": "wait_until", "time": "09:00", "attribute": "shoe_size", "next": "c"},
                    {"key": "c", "type": "wait_until", "time": "09:00", "attribute": "birth_date",
                     "offset_days": 400},
                ]},
            ),
        )  # fmt: skip
    assert set(caught.value.message_dict) == {
        "steps[a].time",
        "steps[a].weekdays",
        "steps[b].attribute",
        "steps[c].offset_days",
    }
    describe = STEP_KINDS["wait_until"].describe
    assert describe({"time": "10:00", "weekdays": [2, 4]}) == "wait until 10:00 on Tue, Thu (contact's time)"
    assert (
        describe({"time": "09:00", "attribute": "birth_date", "offset_days": -3, "anniversary": True})
        == "wait until 3 days before birth_date anniversary at 09:00"
    )
