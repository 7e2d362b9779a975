"""The date trigger: a birthday (or any contact date) at a local time every year, and the
predicted next order minus N days (replenishment), enrolled set-based by a beat task that looks
at the moments since its last check; once per occasion, across DST, in the contact's zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audiences.models import CustomerFacts, CustomField, FieldType
from automations.engine.dates import date_triggers_run
from automations.models import Enrollment, Series
from automations.services import SeriesInput, series_create
from automations.trigger_kinds import describe_trigger
from campaigns.models import EmailTemplate
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, messages, tick

UTC = dt.UTC


def _series(acme: Workspace, templates: dict[str, EmailTemplate], **trigger: Any) -> Series:
    return live_series(
        acme,
        [{"key": "hello", "type": "send", "template": templates["coupon"].pk}],
        trigger={"type": "date", **trigger},
    )


def _keys(series: Series) -> list[tuple[str, str]]:
    return sorted(Enrollment.objects.filter(series=series).values_list("contact__email", "entry_key"))


def test_a_birthday_at_nine_in_the_contacts_zone_once_a_year(
    acme: Workspace, globex: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    clock.freeze(dt.datetime(2027, 3, 13, 12, 0, tzinfo=UTC))
    series = _series(acme, templates, attribute="birth_date", time="09:00")
    # New York moves to summer time on 14 March 2027: 09:00 EDT is 13:00 UTC.
    ann = contact(acme, "ann@example.com", time_zone="America/New_York", birth_date=dt.date(1990, 3, 14))
    contact(acme, "bob@example.com", birth_date=dt.date(1985, 3, 14))  # the workspace's zone: UTC
    contact(acme, "cat@example.com", birth_date=dt.date(1985, 3, 15))
    contact(globex, "ann@example.com", birth_date=dt.date(1990, 3, 14))
    assert date_triggers_run() == []  # published this instant: nothing to look at yet
    clock.advance(minutes=1)
    assert date_triggers_run() == [(series.pk, [])]

    clock.freeze(dt.datetime(2027, 3, 14, 9, 0, tzinfo=UTC))
    date_triggers_run()
    assert _keys(series) == [("bob@example.com", "2027")]
    clock.freeze(dt.datetime(2027, 3, 14, 12, 59, tzinfo=UTC))
    date_triggers_run()
    assert _keys(series) == [("bob@example.com", "2027")]
    clock.freeze(dt.datetime(2027, 3, 14, 13, 0, tzinfo=UTC))
    ((_series_id, ids),) = date_triggers_run()
    assert _keys(series) == [("ann@example.com", "2027"), ("bob@example.com", "2027")]
    assert Enrollment.objects.get(pk=ids[0]).entry_data == {"date": "2027-03-14", "year": 2027, "years": 37}
    tick()
    assert len(messages(ann)) == 1
    clock.advance(minutes=5)
    date_triggers_run()
    assert len(_keys(series)) == 2  # the same birthday never enters twice

    # A year later (New York already on summer time since the 12th): 13:00 UTC again.
    clock.freeze(dt.datetime(2028, 3, 14, 12, 59, tzinfo=UTC))
    Series.objects.filter(pk=series.pk).update(dates_checked_until=dt.datetime(2028, 3, 14, 8, 0, tzinfo=UTC))
    date_triggers_run()
    assert ("ann@example.com", "2028") not in _keys(series)
    clock.advance(minutes=1)
    date_triggers_run()
    assert _keys(series) == [
        ("ann@example.com", "2027"),
        ("ann@example.com", "2028"),
        ("bob@example.com", "2027"),
        ("bob@example.com", "2028"),
    ]


def test_a_leap_day_birthday_comes_on_the_28th_and_an_outage_reaches_back_a_day_only(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    clock.freeze(dt.datetime(2027, 2, 20, 0, 0, tzinfo=UTC))
    series = _series(acme, templates, attribute="birth_date", time="08:00")
    contact(acme, "leap@example.com", birth_date=dt.date(2000, 2, 29))
    contact(acme, "late@example.com", birth_date=dt.date(2000, 2, 25))
    date_triggers_run()
    # The beat was down from the 20th to the 28th at noon: the 25th is more than a day back.
    clock.freeze(dt.datetime(2027, 2, 28, 12, 0, tzinfo=UTC))
    date_triggers_run()
    assert _keys(series) == [("leap@example.com", "2027")]


def test_a_custom_date_with_an_offset(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> None:
    CustomField.objects.create(workspace=acme, key="joined_on", label="Joined on", type=FieldType.DATE)
    clock.freeze(dt.datetime(2027, 6, 1, 0, 0, tzinfo=UTC))
    series = _series(acme, templates, attribute="joined_on", offset_days=-2, time="10:30")
    contact(acme, "dee@example.com", time_zone="Europe/Berlin", attributes={"joined_on": "2020-06-05"})
    date_triggers_run()
    clock.freeze(dt.datetime(2027, 6, 3, 8, 30, tzinfo=UTC))  # 10:30 CEST, two days before
    date_triggers_run()
    assert _keys(series) == [("dee@example.com", "2027")]


def test_a_week_before_the_predicted_next_order(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    clock.freeze(dt.datetime(2027, 5, 1, 0, 0, tzinfo=UTC))
    series = _series(acme, templates, attribute="predicted_next_order", offset_days=-7, time="10:00")
    eve = contact(acme, "eve@example.com", time_zone="Europe/Berlin")
    fay = contact(acme, "fay@example.com")
    for person, predicted in ((eve, dt.datetime(2027, 5, 20, 23, 30, tzinfo=UTC)), (fay, None)):
        CustomerFacts.objects.create(contact=person, workspace=acme, orders_count=2, predicted_next_order_at=predicted)
    date_triggers_run()
    # 23:30 UTC on the 20th is already the 21st in Berlin: a week before is the 14th, 10:00 CEST.
    clock.freeze(dt.datetime(2027, 5, 14, 7, 59, tzinfo=UTC))
    date_triggers_run()
    assert _keys(series) == []
    clock.advance(minutes=1)
    date_triggers_run()
    assert _keys(series) == [("eve@example.com", "2027-05-21")]
    assert Enrollment.objects.get(contact=eve).entry_data == {"predicted_next_order": "2027-05-21"}


def test_the_trigger_is_checked_and_described(acme: Workspace) -> None:
    with pytest.raises(ValidationError) as caught:
        series_create(
            workspace=acme,
            data=SeriesInput(
                name="Bad date",
                trigger={"type": "date", "attribute": "shoe_size", "time": "9am", "offset_days": 1000},
                steps={"steps": [{"key": "x", "type": "exit"}]},
            ),
        )
    assert set(caught.value.message_dict) == {"trigger.attribute", "trigger.time", "trigger.offset_days"}
    assert describe_trigger({"type": "date", "attribute": "birth_date", "offset_days": 0, "time": "09:00"}) == (
        "on each anniversary of birth_date, at 09:00"
    )
    assert (
        describe_trigger({"type": "date", "attribute": "predicted_next_order", "offset_days": -7, "time": "10:00"})
        == "7 days before the predicted next order, at 10:00"
    )
