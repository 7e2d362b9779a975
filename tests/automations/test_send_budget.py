"""Series share one send budget with everything else: the frequency cap gives a contact's one
mail of the day to the most important series, smart sending skips a contact mailed recently,
quiet hours delay a step's email, and each skip is traced where the marketer looks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from automations.models import Enrollment, TraceOutcome
from automations.selectors import series_step_counts
from campaigns.models import DeliverySettings, EmailTemplate, MessageState, SkipReason
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, messages, send_all, track

pytestmark = pytest.mark.usefixtures("clock")


def test_three_series_under_a_one_a_day_cap_mail_only_the_most_important(
    acme: Workspace, templates: dict[str, EmailTemplate]
) -> None:
    DeliverySettings.objects.create(workspace=acme, daily_cap=1)
    one_step = [{"key": "mail", "type": "send", "template": templates["welcome"].pk}]
    promo = live_series(acme, one_step, name="Promo", priority=10, smart_sending=False)
    cart = live_series(acme, one_step, name="Cart", priority=20, smart_sending=False)
    live_series(acme, one_step, name="Digest", priority=10, smart_sending=False)
    receipt = live_series(acme, one_step, name="Receipt", priority=30, kind="transactional")
    nina = contact(acme, "nina@example.com")
    track(nina, "Signed Up")
    assert len(messages(nina)) == 4
    send_all()
    by_series = {
        e.series.name: (m.state, m.reason)
        for e in Enrollment.objects.filter(contact=nina).select_related("series")
        for m in messages(nina)
        if m.source.startswith(f"step:{e.pk}:")
    }
    # Of the three marketing series the triggered one wins the day's one mail; the receipt is
    # transactional and outside the cap.
    assert by_series["Cart"] == (MessageState.SENT, "")
    assert by_series["Promo"] == (MessageState.SKIPPED, SkipReason.DAILY_CAP)
    assert by_series["Digest"] == (MessageState.SKIPPED, SkipReason.DAILY_CAP)
    assert by_series["Receipt"] == (MessageState.SENT, "")
    assert series_step_counts(workspace=acme, series=promo)["mail"].skipped == {SkipReason.DAILY_CAP: 1}
    assert series_step_counts(workspace=acme, series=cart)["mail"].sent == 1
    assert series_step_counts(workspace=acme, series=receipt)["mail"].sent == 1


def test_smart_sending_skips_a_contact_mailed_recently(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    first = live_series(acme, [{"key": "a", "type": "send", "template": templates["welcome"].pk}], name="First")
    second = live_series(
        acme,
        [{"key": "b", "type": "send", "template": templates["coupon"].pk}],
        name="Second",
        trigger={"type": "event", "event": "Product Viewed"},
    )
    omar = contact(acme, "omar@example.com")
    track(omar, "Signed Up")
    send_all()
    track(omar, "Product Viewed")
    send_all()
    assert [(m.state, m.reason) for m in messages(omar)] == [
        (MessageState.SENT, ""),
        (MessageState.SKIPPED, SkipReason.SMART_SENDING),
    ]
    assert series_step_counts(workspace=acme, series=second)["b"].skipped == {SkipReason.SMART_SENDING: 1}
    assert series_step_counts(workspace=acme, series=first)["a"].sent == 1


def test_quiet_hours_delay_a_step_email_until_morning(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    acme.time_zone = "Europe/Berlin"
    acme.save()
    DeliverySettings.objects.create(workspace=acme, quiet_hours_start=dt.time(21), quiet_hours_end=dt.time(8))
    live_series(acme, [{"key": "hi", "type": "send", "template": templates["welcome"].pk}])
    night = dt.datetime(2026, 12, 8, 23, 30, tzinfo=dt.UTC)  # 00:30 in Berlin
    clock.freeze(night)
    pia = contact(acme, "pia@example.com")
    track(pia, "Signed Up")
    send_all()
    (message,) = messages(pia)
    assert message.state == MessageState.QUEUED and message.reason == SkipReason.QUIET_HOURS
    clock.freeze(dt.datetime(2026, 12, 9, 7, 1, tzinfo=dt.UTC))  # 08:01 in Berlin
    send_all()
    message.refresh_from_db()
    assert message.state == MessageState.SENT
    enrollment = Enrollment.objects.get(contact=pia)
    assert enrollment.traces.filter(step_key="hi", outcome=TraceOutcome.SENT).count() == 1
