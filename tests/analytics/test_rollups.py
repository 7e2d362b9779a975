"""The rollups equal the live query over the raw rows: after random sends and events in two
workspaces (in two zones), refreshed between the writes, with events that arrive late for old
days, duplicates, an event whose id was handed out before others committed, and after a
rebuild. Two workspaces never mix."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from django.core.management import call_command

from analytics.live import live_rows
from analytics.models import DailyRollup, MessageFact, RefreshState
from analytics.rollups import rollups_rebuild, rollups_refresh
from campaigns.models import Message
from esp.models import Workspace
from tests.analytics.helpers import event, message, reserve_event_id, rollup_rows

NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)
TYPES = ["delivered", "opened", "opened", "clicked", "bounced", "soft_bounced", "deferred", "complained",
         "unsubscribed", "rejected"]  # fmt: skip
SOURCES = ["broadcast:7", "broadcast:8", "step:1:welcome", "step:2:reminder", "tx:order-1", "demo:x", "test:t"]


def _send(rng: random.Random, workspace: Workspace, n: int) -> list[Message]:
    sent = []
    for _ in range(n):
        # Around midnight of the workspace's zone too, so the day boundary is exercised.
        at = NOW - dt.timedelta(days=rng.randint(0, 20), hours=rng.choice([0, 1, 11, 12, 13, 23]))
        sent.append(message(workspace, source=rng.choice(SOURCES), sent_at=at if rng.random() > 0.1 else None))
    return sent


def _events(rng: random.Random, messages: list[Message], n: int) -> None:
    for _ in range(n):
        m = rng.choice(messages)
        base = m.sent_at or NOW
        event(m, rng.choice(TYPES), base + dt.timedelta(hours=rng.uniform(0, 72)), machine=rng.random() < 0.25)


def _assert_equal_to_live(*workspaces: Workspace) -> None:
    for workspace in workspaces:
        assert rollup_rows(workspace) == live_rows(workspace=workspace), workspace.slug


@pytest.mark.django_db
def test_rollups_equal_the_live_query_after_random_writes_late_events_and_a_rebuild(
    acme: Workspace, globex: Workspace
) -> None:
    acme.time_zone = "Europe/Sofia"
    acme.save()
    globex.time_zone = "America/New_York"
    globex.save()
    rng = random.Random(21)  # noqa: S311 — repeatable test data
    mail = {acme.pk: _send(rng, acme, 60), globex.pk: _send(rng, globex, 40)}
    for round_ in range(4):
        for workspace in (acme, globex):
            _events(rng, mail[workspace.pk], 80)
            mail[workspace.pk] += _send(rng, workspace, 10)
        if round_ == 1:
            # An id handed out now, committed after the refresh passed it (an open transaction).
            late_id = reserve_event_id()
        rollups_refresh()
        _assert_equal_to_live(acme, globex)
        if round_ == 2:
            # It commits now, below the watermark: the next refresh finds it in its gap.
            late = rng.choice([m for m in mail[acme.pk] if m.sent_at and not m.events.exists()])
            event(late, "opened", NOW, pk=late_id)
    # Late events for the oldest days, second opens of opened messages.
    opened = list(Message.objects.filter(workspace=acme, opened_at__isnull=True, sent_at__isnull=False)[:5])
    for m in opened + opened:
        event(m, "opened", NOW + dt.timedelta(days=1))
    rollups_refresh()
    _assert_equal_to_live(acme, globex)
    before = rollup_rows(acme)
    rollups_rebuild(workspace=acme)
    assert rollup_rows(acme) == before
    # A rebuild of a period: the rest stays; a refresh after it adds nothing twice.
    march = DailyRollup.objects.filter(workspace=globex, day__gte=dt.date(2026, 3, 1), day__lte=dt.date(2026, 3, 31))
    assert march.exists()
    march.update(sent=0)
    call_command("analytics_rebuild", "--workspace", str(globex.pk), "--since", "2026-03-01", "--until", "2026-03-31")
    _events(rng, mail[globex.pk], 30)
    rollups_refresh()
    _assert_equal_to_live(acme, globex)


@pytest.mark.django_db
def test_a_refresh_reads_only_what_is_new(acme: Workspace) -> None:
    m = message(acme, sent_at=NOW)
    event(m, "delivered", NOW)
    rollups_refresh()
    watermark = RefreshState.objects.get().event_id
    assert watermark == m.events.get().pk
    rollups_refresh()
    assert RefreshState.objects.get().event_id == watermark
    assert DailyRollup.objects.get(workspace=acme).delivered == 1


@pytest.mark.django_db
def test_a_rebuild_of_one_workspace_leaves_the_other_alone(acme: Workspace, globex: Workspace) -> None:
    for workspace in (acme, globex):
        event(message(workspace, sent_at=NOW), "delivered", NOW)
    rollups_refresh()
    MessageFact.objects.filter(workspace=globex).update(flags=1)
    DailyRollup.objects.filter(workspace=globex).update(delivered=5)
    rollups_rebuild(workspace=acme)
    assert DailyRollup.objects.get(workspace=globex).delivered == 5
    assert DailyRollup.objects.get(workspace=acme).delivered == 1
    rollups_rebuild(workspace=globex)
    assert DailyRollup.objects.get(workspace=globex).delivered == 1


@pytest.mark.django_db
def test_the_send_loop_tells_the_refresh_what_it_sent(acme: Workspace, django_capture_on_commit_callbacks: Any) -> None:
    """Through the real road: messages_enqueue → the sender (outbox) → the settled hook."""
    from audiences.models import Contact
    from campaigns.delivery.sender import messages_send_due
    from campaigns.delivery.services import messages_enqueue
    from campaigns.models import MessageClass
    from tests.factories import EmailTemplateFactory

    template = EmailTemplateFactory(workspace=acme)
    people = [Contact.objects.create(workspace=acme, email=f"p{n}@example.com") for n in range(3)]
    messages_enqueue(
        workspace=acme, source="broadcast:99", contacts=Contact.objects.filter(pk__in=[p.pk for p in people]),
        template=template, message_class=MessageClass.MARKETING,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        messages_send_due()
    assert Message.objects.filter(workspace=acme, state="sent").count() == 3
    rollups_refresh()
    row = DailyRollup.objects.get(workspace=acme)
    assert (row.kind, row.object_id, row.template_id, row.sent) == ("broadcast", 99, template.pk, 3)
