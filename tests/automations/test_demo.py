"""The demo shop's series (automations.demo, seeded by `manage.py seed_demo`): every recipe live,
with weeks of history that the engine made of the shop's events — enrollments in every state,
traces, step emails in the outbox with opens and clicks — and nothing left for the worker to
redo when the seed's hooks reach it after commit."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from audiences.models import Contact, Event, EventType, SegmentMembership
from automations.engine.events import events_arrived, segment_changed
from automations.engine.runner import enrollments_run_all_due
from automations.models import Enrollment, EnrollmentState, Series, SeriesStatus, Trace, TraceOutcome
from automations.recipes import RECIPES
from campaigns.models import Message, MessageState
from esp.models import OutboxMessage, Workspace


@pytest.mark.django_db(transaction=False)
def test_demo_series_have_weeks_of_history(tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=StringIO())
    workspace = Workspace.objects.get(slug="demo-shop")
    now = timezone.now()

    series = list(Series.objects.in_workspace(workspace))
    assert len(series) == len(RECIPES) and all(s.status == SeriesStatus.LIVE for s in series)
    assert all(s.created_at < now - timedelta(days=14) for s in series)  # switched on weeks ago
    enrollments = Enrollment.objects.in_workspace(workspace)
    states = dict(enrollments.values_list("state").annotate(n=Count("id")))
    for state in (EnrollmentState.WAITING, EnrollmentState.COMPLETED, EnrollmentState.CONVERTED):
        assert states.get(state, 0) > 10, state
    by_series = dict(enrollments.values_list("series__name").annotate(n=Count("id")))
    assert sum(1 for s in series if by_series.get(s.name)) >= len(RECIPES) - 1  # welcome: few sign-ups
    assert not enrollments.filter(entered_at__gt=now).exists()
    # The abandoned cart's keyed goal: carts ordered within the hour convert, the rest are reminded.
    cart = enrollments.filter(series__name="Abandoned cart")
    assert cart.filter(state=EnrollmentState.CONVERTED).exists()
    assert Trace.objects.filter(enrollment__in=cart, step_key="reminder", outcome=TraceOutcome.SENT).exists()

    steps = Message.objects.in_workspace(workspace).filter(source__startswith="step:")
    sent = steps.filter(state=MessageState.SENT)
    assert sent.count() > 100 and not sent.filter(sent_at__gt=now).exists()
    assert steps.filter(state=MessageState.SKIPPED).exists()  # the send rules had their say
    reminder = sent.filter(source__endswith=":reminder", data__event__cart_id__isnull=False).first()
    assert reminder is not None and reminder.data["event"]["products"]  # the email shows the cart
    assert 0 < sent.exclude(clicked_at=None).count() < sent.exclude(opened_at=None).count() < sent.count()
    assert OutboxMessage.objects.filter(workspace=workspace, to=[sent.first().to_email]).exists()
    traced = Trace.objects.filter(series__workspace=workspace, message__isnull=False).count()
    assert traced == steps.count()

    # After commit the seed's hooks reach the worker with every event and segment entry: they
    # find the work done and enroll nobody again (nor anyone for last year's history).
    counts = enrollments.count()
    ids = list(
        Event.objects.in_workspace(workspace)
        .filter(type=EventType.TRACK, contact__isnull=False)
        .values_list("pk", flat=True)
    )
    for start in range(0, len(ids), 1000):
        enrollments_run_all_due(ids=events_arrived(workspace_id=workspace.pk, event_ids=ids[start : start + 1000]))
    for one in series:
        if one.trigger.get("type") == "segment":
            members = SegmentMembership.objects.filter(segment_id=one.trigger["segment"], exited_at=None)
            entered = list(members.values_list("contact_id", flat=True))
            segment_changed(workspace_id=workspace.pk, segment_id=one.trigger["segment"], entered=entered, exited=[])
    assert enrollments.count() == counts

    # Again: nothing changes.
    call_command("seed_demo", stdout=StringIO())
    assert enrollments.count() == counts and Series.objects.in_workspace(workspace).count() == len(RECIPES)
    assert Contact.objects.in_workspace(workspace).count() == 240
