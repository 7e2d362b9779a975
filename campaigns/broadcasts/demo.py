"""The demo shop's broadcasts (called by campaigns.demo while it seeds the demo month, before
the delivery rules go in): a newsletter a month over the past seventeen months (demo_history),
a promo to the newsletter with an A/B test of its subject, sent six days ago
through the real road (schedule → the test group's snapshot → the send loop → the outbox →
the decision → the rest), with the opens, clicks, bounces and a
complaint a week brings; and the next one, scheduled for next week at 10:00 in each contact's
own time zone for the shop's best customers."""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from audiences.models import MailingList, Segment
from campaigns.broadcast_models import Broadcast, BroadcastTest, SendMode
from campaigns.broadcasts import ab
from campaigns.broadcasts.demo_history import seed_history
from campaigns.broadcasts.services import BroadcastInput, broadcast_create, broadcast_schedule, broadcasts_tick
from campaigns.delivery.sender import messages_send_due
from campaigns.events import message_event_record
from campaigns.models import EmailTemplate, Message, MessageEventType, MessageSource, MessageState
from esp.models import Workspace

MAIL_CLIENT_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
APPLE_PROXY_UA = "Mozilla/5.0"
SENT_DAYS_AGO = 6
WAIT_HOURS = 4


def seed(workspace: Workspace, promo: EmailTemplate, rng: random.Random) -> None:
    if Broadcast.objects.in_workspace(workspace).exists():
        return
    newsletter = MailingList.objects.in_workspace(workspace).filter(name="Newsletter").first()
    if newsletter is not None:
        before = timezone.now() - dt.timedelta(days=SENT_DAYS_AGO + 2)
        # A generator of its own: the A/B test's draws below stay what they were.
        seed_history(workspace, promo, newsletter, random.Random(17), before=before)  # noqa: S311 — demo data
        _finished_promo(workspace, promo, newsletter, rng)
    best = Segment.objects.in_workspace(workspace).filter(name="Champions").first()
    local_at = (timezone.localtime(timezone.now(), workspace.zone) + dt.timedelta(days=7)).replace(
        hour=10, minute=0, second=0, microsecond=0, tzinfo=None
    )
    upcoming = broadcast_create(
        workspace=workspace,
        data=BroadcastInput(
            name="Early access: the winter collection",
            include_segments=[best.pk] if best else [],
            include_lists=[] if best else [newsletter.pk] if newsletter else [],
            template=promo.pk,
            subject="{{ contact.first_name|default:'Hello' }}, the winter collection is yours first",
            preheader="48 hours before everyone else: new coats, knitwear and boots.",
            utm_parameters={"utm_campaign": "winter-early-access"},
            send_mode=SendMode.LOCAL,
            local_at=local_at,
            throttle_hours=2,
        ),
    )
    broadcast_schedule(workspace=workspace, broadcast_id=upcoming.pk)


def _finished_promo(workspace: Workspace, promo: EmailTemplate, newsletter: MailingList, rng: random.Random) -> None:
    """Sent six days ago with an A/B test of two subjects on 30 % of the list; after the 4-hour
    wait the better one (B, as the demo's openers prefer it) went to the rest."""
    broadcast = broadcast_create(
        workspace=workspace,
        data=BroadcastInput(
            name="Spring sale −20 %",
            include_lists=[newsletter.pk],
            template=promo.pk,
            subject="Spring sale: 20 % off everything, {{ contact.first_name|default:'friend' }}",
            preheader="Three days only, on everything in the shop.",
            utm_parameters={"utm_campaign": "spring-sale"},
        ),
    )
    ab.ab_configure(
        workspace=workspace,
        broadcast_id=broadcast.pk,
        data=ab.AbInput(
            variants=[
                ab.VariantInput(subject="Spring sale: 20 % off everything, {{ contact.first_name|default:'friend' }}"),
                ab.VariantInput(subject="{{ contact.first_name|default:'Hello' }}, your −20 % is waiting"),
            ],
            test_percent=30,
            wait_hours=WAIT_HOURS,
        ),
    )
    broadcast_schedule(workspace=workspace, broadcast_id=broadcast.pk)  # "now": the test group's snapshot
    messages_send_due()
    # A week ago, as a real send would have been: the test group, its wait, then the rest.
    sent_at = timezone.now() - dt.timedelta(days=SENT_DAYS_AGO)
    source = str(MessageSource.broadcast(broadcast.pk))
    test_group = list(Message.objects.filter(workspace=workspace, source=source).values_list("pk", flat=True))
    _backdate(workspace, test_group, sent_at, rng, within_hours=WAIT_HOURS - 0.5)
    decided_at = sent_at + dt.timedelta(hours=WAIT_HOURS, minutes=5)
    BroadcastTest.objects.filter(broadcast=broadcast).update(decide_after=decided_at)
    ab.ab_tick(now=decided_at)  # B wins and goes to the rest
    messages_send_due()
    rest = list(
        Message.objects.filter(workspace=workspace, source=source)
        .exclude(pk__in=test_group)
        .values_list("pk", flat=True)
    )
    _backdate(workspace, rest, decided_at, rng)
    broadcasts_tick()
    Broadcast.objects.filter(pk=broadcast.pk).update(
        created_at=sent_at - dt.timedelta(days=1),
        updated_at=decided_at,
        started_at=sent_at,
        finished_at=decided_at + dt.timedelta(minutes=3),
    )
    BroadcastTest.objects.filter(broadcast=broadcast).update(decided_at=decided_at)


def _backdate(
    workspace: Workspace, ids: list[int], sent_at: dt.datetime, rng: random.Random, within_hours: float = 30
) -> None:
    """Move sent messages to `sent_at` (a few seconds apart) and give them a week's engagement;
    variant B's subject is opened more often (the demo's A/B test has a winner)."""
    sent = Message.objects.filter(workspace=workspace, pk__in=ids, state=MessageState.SENT).order_by("id")
    for n, message in enumerate(sent):
        at = sent_at + dt.timedelta(seconds=2 * n)
        Message.objects.filter(pk=message.pk).update(created_at=sent_at, due_at=sent_at, claimed_at=at, sent_at=at)
        message.sent_at = at
        better = (message.data or {}).get("variant") == "B"
        _engage(message, at, rng, n, open_rate=0.5 if better else 0.36, within_hours=within_hours)


def _engage(
    message: Message, at: dt.datetime, rng: random.Random, n: int, *, open_rate: float = 0.42, within_hours: float = 30
) -> None:
    key = f"demo-broadcast:{message.pk}"
    if n % 53 == 7:
        message_event_record(
            message=message,
            type=MessageEventType.BOUNCED,
            occurred_at=at + dt.timedelta(minutes=1),
            event_key=f"{key}:bounce",
            details={"bounce_type": "hard", "mta_response": "550 5.1.1 mailbox unavailable"},
        )
        return
    _record(message, MessageEventType.DELIVERED, at + dt.timedelta(seconds=15), f"{key}:delivered")
    if rng.random() < 0.15:  # Apple Mail Privacy Protection: an open that is no person's
        _record(message, MessageEventType.OPENED, at + dt.timedelta(minutes=1), f"{key}:mpp", machine=True)
    if rng.random() < open_rate:
        opened = at + dt.timedelta(hours=rng.uniform(0.1, within_hours))
        _record(message, MessageEventType.OPENED, opened, f"{key}:open")
        if message.links and rng.random() < 0.35:
            # The hero button most, the rest of the email's links less.
            index = min(int(rng.expovariate(1.2)), len(message.links) - 1)
            clicked = opened + dt.timedelta(minutes=rng.uniform(0.3, 8))
            _record(message, MessageEventType.CLICKED, clicked, f"{key}:click", url=message.links[index], link=index)
    if n % 97 == 11:
        _record(message, MessageEventType.COMPLAINED, at + dt.timedelta(hours=5), f"{key}:complaint")


def _record(
    message: Message, type: str, at: dt.datetime, key: str, *, url: str = "", link: int = 0, machine: bool = False
) -> None:
    message_event_record(
        message=message,
        type=type,
        occurred_at=at,
        event_key=key,
        url=url,
        user_agent=APPLE_PROXY_UA if machine else MAIL_CLIENT_UA,
        is_machine=machine,
        details={"link": link} if url else {},
    )
