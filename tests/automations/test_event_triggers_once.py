"""An event starts a series once, and only if it happened since the series went live and not
long ago: a batch handed over again (a re-delivered task, the demo's replay) or history sent
late never enrolls anyone a second time or mails about last month's cart."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from automations.engine.events import events_arrived
from automations.models import Enrollment, EnrollmentState, ReEntry
from campaigns.models import EmailTemplate
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, tick, track

pytestmark = pytest.mark.usefixtures("clock")


def _cart_series(acme: Workspace, templates: dict[str, EmailTemplate]) -> Any:
    return live_series(
        acme,
        [{"key": "remind", "type": "send", "template": templates["reminder"].pk}],
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
        re_entry=ReEntry.ALWAYS,
    )


def test_an_event_handed_over_again_enrolls_no_one_twice(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    series = _cart_series(acme, templates)
    person = contact(acme, "again@acme.test")
    event = track(person, "Checkout Started", cart_id="A")
    (first,) = Enrollment.objects.filter(series=series)
    assert first.state == EnrollmentState.COMPLETED  # ended: the live-key constraint no longer guards it
    clock.advance(minutes=5)
    assert events_arrived(workspace_id=acme.pk, event_ids=[event.pk]) == []
    tick()
    assert Enrollment.objects.filter(series=series).count() == 1
    track(person, "Checkout Started", cart_id="A")  # the same cart again, a new event: a new entry
    assert Enrollment.objects.filter(series=series).count() == 2


def test_history_from_before_the_series_went_live_starts_nothing(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    series = _cart_series(acme, templates)
    person = contact(acme, "late@acme.test")
    track(person, "Checkout Started", at=clock.now() - dt.timedelta(days=30), cart_id="old")
    track(person, "Checkout Started", at=clock.now() - dt.timedelta(hours=2), cart_id="before")
    assert not Enrollment.objects.filter(series=series).exists()
    # Sent a moment before the series went live and processed after: it was on its way.
    track(person, "Checkout Started", at=clock.now() - dt.timedelta(minutes=10), cart_id="on-its-way")
    assert list(Enrollment.objects.filter(series=series).values_list("entry_key", flat=True)) == ["on-its-way"]


def test_an_event_older_than_a_day_starts_nothing(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    series = _cart_series(acme, templates)
    person = contact(acme, "backlog@acme.test")
    clock.advance(days=3)
    # Happened while the series was live, but reaches the engine two days late (a backlog).
    track(person, "Checkout Started", at=clock.now() - dt.timedelta(days=2), cart_id="stale")
    track(person, "Checkout Started", at=clock.now() - dt.timedelta(hours=20), cart_id="late-but-fresh")
    assert list(Enrollment.objects.filter(series=series).values_list("entry_key", flat=True)) == ["late-but-fresh"]
