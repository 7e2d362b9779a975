"""The demo shop's series, seeded by `manage.py seed_demo` (make run) after its audience, shop
history and mail: every recipe, live, as if the shop had switched them on some weeks ago.

Nothing is faked: the engine's clock is set back to the day the series went live and the
shop's events of those weeks are handed to the engine one by one at the moment they reached
the shop (their `received_at`), with the beat's tick and the send road run in between at every
moment something falls due. So the enrollments, their traces and the step emails in the outbox
are what the engine made of that history: people converted by their order, carts reminded,
waits still running, mail skipped by the send rules. Engagement with the step emails (opens,
clicks) follows, recorded the way the tracking endpoints record it.

Deterministic for a given history (the events come from seeded generators, the engagement
from a seeded one), and quick: the replay visits only the moments where something happens.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from audiences.models import Event, EventType, PendingEvents, Segment
from audiences.pipeline import pending_events_process
from audiences.segments.compiler import segment_queryset
from audiences.segments.membership import segment_refresh
from audiences.segments.registry import RuleContext
from automations.engine.dates import date_triggers_run
from automations.engine.events import BEFORE_LIVE, events_arrived, promos_start, segment_changed
from automations.engine.runner import enrollments_run_all_due
from automations.models import Series, SeriesVersion
from automations.recipes import RECIPES, series_from_recipe
from automations.services import SeriesInput, series_publish, series_update
from campaigns.delivery.sender import messages_send_due
from campaigns.events import message_event_record
from campaigns.models import Message, MessageEventType, MessageState, SourceKind
from esp import clock
from esp.models import Workspace

# How long ago the shop switched its series on.
LIVE_FOR = dt.timedelta(days=21)
# Segment-started series (win-back) see their segment recomputed this often, and date-started
# ones (birthday, replenishment) look for the dates that came round.
SEGMENT_EVERY = dt.timedelta(days=1)
# The send road runs a few times an hour of the replay, not at every step: a batch costs about
# what one message costs.
SEND_LAG = dt.timedelta(minutes=20)
MAIL_CLIENT_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"


def seed(workspace: Workspace) -> None:
    if Series.objects.in_workspace(workspace).exists():
        return
    now = timezone.now().replace(microsecond=0)
    went_live = now - LIVE_FOR
    previous = clock.now() if clock.is_frozen() else None
    try:
        clock.freeze(went_live)
        series = [_go_live(workspace, key, now) for key in RECIPES]
        _replay(workspace, series, went_live, now)
    finally:
        if previous is not None:
            clock.freeze(previous)
        else:
            clock.thaw()
    _engagement(workspace, now, random.Random(18))  # noqa: S311 — repeatable demo data, not a secret
    for segment_id in {s.trigger["segment"] for s in series if s.trigger.get("segment")}:
        segment_refresh(segment_id=segment_id, now=now)
    _process_pending(workspace)


def _process_pending(workspace: Workspace) -> None:
    """The engagement went into the event store one event a row; the pipeline takes them as one
    batch (as it takes an SDK's batch of 500), now rather than leaving them to a worker: each
    row alone would refresh its contact's facts and segments, which costs the seed a minute."""
    rows = PendingEvents.objects.in_workspace(workspace)
    event_ids = sorted({event_id for ids in rows.values_list("event_ids", flat=True) for event_id in ids})
    if not event_ids:
        return
    rows.delete()
    batch = PendingEvents.objects.create(workspace=workspace, event_ids=event_ids)
    pending_events_process(pending_id=batch.pk)


def _go_live(workspace: Workspace, key: str, now: dt.datetime) -> Series:
    series = series_from_recipe(workspace=workspace, recipe_key=key)
    if series.trigger.get("type") == "promo":
        # The promo began three days ago at nine: teaser and launch are out, the last chance
        # goes tomorrow.
        zone = ZoneInfo(workspace.time_zone or "UTC")
        day = (now - dt.timedelta(days=3)).astimezone(zone).date()
        at = dt.datetime.combine(day, dt.time(9), tzinfo=zone)
        series = series_update(
            workspace=workspace, series_id=series.pk, data=SeriesInput(trigger={**series.trigger, "at": at.isoformat()})
        )
    series_publish(workspace=workspace, series_id=series.pk)
    went_live = clock.now()
    Series.objects.filter(pk=series.pk).update(created_at=went_live, updated_at=went_live)
    SeriesVersion.objects.filter(series=series).update(created_at=went_live)
    series.refresh_from_db()
    return series


def _event_names(series: list[Series]) -> set[str]:
    """The events the series start on, convert on or wait for: the others change nothing."""
    names = set()
    for one in series:
        names.add(one.trigger.get("event", ""))
        names.add(one.goal.get("event", ""))
        assert one.live_version is not None
        names.update(step.get("event", "") for step in one.live_version.steps["steps"])
    return names - {""}


def _replay(workspace: Workspace, series: list[Series], went_live: dt.datetime, now: dt.datetime) -> None:
    replay = _Replay(workspace, series, went_live, now)
    moment = went_live
    while moment < now:
        clock.freeze(moment)
        replay.run(moment)
        moment = replay.next_moment(moment)
    # The demo's offline phones deliver a few events "later" than now: they arrive now.
    clock.freeze(now)
    replay.run(now, everything=True)


class _Replay:
    """The shop's weeks, moment by moment: at each, what arrives and what falls due."""

    def __init__(self, workspace: Workspace, series: list[Series], went_live: dt.datetime, now: dt.datetime) -> None:
        self.workspace = workspace
        self.events = list(
            Event.objects.in_workspace(workspace)
            .filter(
                type=EventType.TRACK,
                contact__isnull=False,
                name__in=_event_names(series),
                # An event on its way when the series went live still starts it (BEFORE_LIVE).
                received_at__gte=went_live - BEFORE_LIVE,
            )
            .order_by("received_at", "id")
            .values_list("id", "received_at")
        )
        self.index = 0
        segment_ids = [one.trigger["segment"] for one in series if one.trigger.get("type") == "segment"]
        self.segments = {s.pk: s for s in Segment.objects.filter(pk__in=segment_ids)}
        self.members: dict[int, set[int]] = {segment_id: set() for segment_id in self.segments}
        self.segment_check = went_live
        self.promo_segments = [one.trigger["segment"] for one in series if one.trigger.get("type") == "promo"]
        self.promo_at = min(
            (dt.datetime.fromisoformat(one.trigger["at"]) for one in series if one.trigger.get("type") == "promo"),
            default=None,
        )
        # Set by next_moment: when the next enrollment and the next step email fall due.
        self.enrollment_due: dt.datetime | None = went_live
        self.message_due: dt.datetime | None = None

    def run(self, moment: dt.datetime, *, everything: bool = False) -> None:
        if self.promo_at is not None and self.promo_at <= moment:
            # Its audience as the periodic refresh had it then (the recipe made the segment).
            for segment_id in self.promo_segments:
                segment_refresh(segment_id=segment_id, now=moment)
            promos_start(now=moment)
            self.promo_at = None
        if self.segment_check <= moment:
            self._segments(moment)
            # Birthdays and predicted orders that came round since the last look.
            for _series, due in date_triggers_run(now=moment):
                if due:
                    enrollments_run_all_due(ids=due)
            self.segment_check = moment + SEGMENT_EVERY
        # One event at a time: a cart added a minute after the view must find the browse
        # enrollment that view started.
        while self.index < len(self.events) and (everything or self.events[self.index][1] <= moment):
            due = events_arrived(workspace_id=self.workspace.pk, event_ids=[self.events[self.index][0]])
            if due:
                enrollments_run_all_due(ids=due)
            self.index += 1
        if everything or (self.enrollment_due is not None and self.enrollment_due <= moment):
            enrollments_run_all_due()
        if everything or (self.message_due is not None and self.message_due + SEND_LAG <= moment):
            messages_send_due()

    def _segments(self, moment: dt.datetime) -> None:
        """Who entered the segments that start series since the last check, as the periodic
        refresh finds them."""
        for segment_id, segment in self.segments.items():
            ctx = RuleContext(self.workspace, now=moment)
            matching = segment_queryset(workspace=self.workspace, rules=segment.rules, context=ctx, now=moment)
            current = set(matching.values_list("pk", flat=True))
            entered = sorted(current - self.members[segment_id])
            self.members[segment_id] = current
            if entered:
                due = segment_changed(workspace_id=self.workspace.pk, segment_id=segment_id, entered=entered, exited=[])
                enrollments_run_all_due(ids=due)

    def next_moment(self, at: dt.datetime) -> dt.datetime:
        """The next moment anything happens: an event arrives, an enrollment or a step email
        falls due (a wait's end, quiet hours over), a segment check, the promo's start."""
        # What fell due at `at` or before was run there (or is held by a send rule that moves
        # its time): only what falls due later makes a new moment. One query for both.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT (SELECT min(due_at) FROM automations_enrollment
                        WHERE workspace_id = %(ws)s AND ended_at IS NULL AND due_at > %(at)s),
                       (SELECT min(due_at) FROM campaigns_message
                        WHERE workspace_id = %(ws)s AND state = %(queued)s AND source LIKE %(step)s
                          AND due_at > %(sent_before)s)
                """,
                {"ws": self.workspace.pk, "at": at, "queued": MessageState.QUEUED,
                 "step": f"{SourceKind.STEP}:%", "sent_before": at - SEND_LAG},
            )  # fmt: skip
            self.enrollment_due, self.message_due = cursor.fetchone()  # type: ignore[misc]
        candidates = [self.segment_check]
        if self.index < len(self.events):
            candidates.append(self.events[self.index][1])
        if self.promo_at is not None:
            candidates.append(self.promo_at)
        if self.enrollment_due is not None:
            candidates.append(self.enrollment_due)
        if self.message_due is not None:
            candidates.append(self.message_due + SEND_LAG)
        return max(min(candidates), at + dt.timedelta(seconds=1))


def _engagement(workspace: Workspace, now: dt.datetime, rng: random.Random) -> None:
    """Deliveries, opens and clicks of the step emails, after they were sent and never after
    now, through message_event_record (as webhooks and the tracking endpoints do)."""
    sent = (
        Message.objects.in_workspace(workspace)
        .filter(source__startswith=f"{SourceKind.STEP}:", state=MessageState.SENT)
        .order_by("id")
    )
    for message in sent:
        at = message.sent_at or now
        key = f"demo-series:{message.pk}"
        _record(message, MessageEventType.DELIVERED, min(at + dt.timedelta(seconds=15), now), f"{key}:delivered")
        hours = (now - at).total_seconds() / 3600
        if hours < 0.5 or rng.random() >= 0.5:
            continue
        opened = at + dt.timedelta(hours=rng.uniform(0.1, min(30.0, hours - 0.2)))
        _record(message, MessageEventType.OPENED, opened, f"{key}:open")
        if message.links and rng.random() < 0.35:
            clicked = min(opened + dt.timedelta(minutes=rng.uniform(0.5, 8)), now)
            _record(message, MessageEventType.CLICKED, clicked, f"{key}:click", url=message.links[0])


def _record(message: Message, type: str, at: dt.datetime, key: str, url: str = "") -> None:
    message_event_record(message=message, type=type, occurred_at=at, event_key=key, url=url, user_agent=MAIL_CLIENT_UA)
