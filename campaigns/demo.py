"""The demo shop's mail, seeded by `manage.py seed_demo` after its audience and shop history:
a sender, delivery rules, the eight starter templates, and a month of mail sent through the
real road (messages_enqueue → the sender → the outbox provider) — a welcome series, a promo to
the newsletter and abandoned-cart reminders with the cart that was left — followed by the
engagement a real month brings (deliveries, opens incl. machine opens, clicks, a bounce and a
complaint), recorded through the same function the webhooks and the tracking endpoints use."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable

from django.db.models import Q
from django.utils import timezone

from audiences.models import Contact, Event, MailingList, PendingEvents, SubscriptionStatus
from audiences.pipeline import pending_events_process
from campaigns.broadcasts import demo as broadcast_demo
from campaigns.content.services import template_copy_starter, template_update
from campaigns.content.starters import STARTERS
from campaigns.delivery.sender import messages_send_due
from campaigns.delivery.services import messages_enqueue
from campaigns.events import message_event_record
from campaigns.models import (
    EmailTemplate,
    Message,
    MessageClass,
    MessageEventType,
    MessageSource,
    MessageState,
    SourceKind,
)
from campaigns.providers.services import delivery_settings_update, sender_create
from esp.models import Workspace

APPLE_PROXY_UA = "Mozilla/5.0"
MAIL_CLIENT_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Thunderbird/128.0"


def seed(workspace: Workspace) -> None:
    if EmailTemplate.objects.in_workspace(workspace).exists():
        return
    rng = random.Random(5)  # noqa: S311 — repeatable demo data, not a secret
    sender_create(
        workspace=workspace, from_name=workspace.name, from_email="hello@demo.shop", reply_to="support@demo.shop"
    )
    orders = sender_create(
        workspace=workspace, from_name=f"{workspace.name} orders", from_email="orders@demo.shop",
        reply_to="support@demo.shop",
    )  # fmt: skip
    templates = {key: template_copy_starter(workspace=workspace, starter_key=key) for key in STARTERS}
    # Order mail comes from the orders address, the rest from the default sender.
    templates["order_thank_you"] = template_update(
        workspace=workspace, template_id=templates["order_thank_you"].pk, data={"sender_id": orders.pk}
    )
    _send_demo_mail(workspace, templates)
    # A promo broadcast sent last week and the next one scheduled (sent before the rules too).
    broadcast_demo.seed(workspace, templates["promo"], rng)
    # The rules go in after the demo month was sent, so that they do not hold that back.
    delivery_settings_update(
        workspace=workspace,
        data={
            "daily_cap": 2,
            "weekly_cap": 6,
            "quiet_hours_start": dt.time(21, 0),
            "quiet_hours_end": dt.time(8, 0),
            "utm_parameters": {"utm_source": "mini-esp", "utm_medium": "email"},
        },
    )
    _engagement(workspace, rng)
    # The engagement events went into the event store; the seed processes them now rather than
    # leaving them to a worker (as the shop history does).
    for pending_id in PendingEvents.objects.in_workspace(workspace).order_by("id").values_list("pk", flat=True):
        pending_events_process(pending_id=pending_id)


def _send_demo_mail(workspace: Workspace, templates: dict[str, EmailTemplate]) -> None:
    contacts = Contact.objects.in_workspace(workspace).exclude(email="")
    newsletter = MailingList.objects.in_workspace(workspace).filter(name="Newsletter").first()
    messages_enqueue(
        workspace=workspace,
        source=str(MessageSource.demo("welcome")),
        contacts=contacts.filter(pk__in=list(contacts.order_by("-id").values_list("pk", flat=True)[:60])),
        template=templates["welcome"],
        message_class=MessageClass.MARKETING,
    )
    if newsletter is not None:
        subscribers = contacts.filter(
            subscriptions__mailing_list=newsletter, subscriptions__status=SubscriptionStatus.SUBSCRIBED
        )
        messages_enqueue(
            workspace=workspace,
            source=str(MessageSource.demo("promo-autumn-sale")),
            contacts=subscribers,
            template=templates["promo"],
            message_class=MessageClass.MARKETING,
            mailing_list=newsletter,
        )
    # Carts left at checkout (the demo shop marks their order as "pending-…"): the reminder
    # shows the products of the cart each contact left.
    abandoned = (
        Event.objects.in_workspace(workspace)
        .filter(name="Checkout Started", contact__isnull=False)
        .filter(Q(properties__order_id__startswith="pending-"))
        .order_by("contact_id", "-occurred_at")
        .distinct("contact_id")[:25]
    )
    _mail_each(abandoned, "abandoned-cart", "cart_id", templates["abandoned_cart"], MessageClass.MARKETING)
    # Thank-you notes for the latest orders: transactional, from the orders address.
    orders = (
        Event.objects.in_workspace(workspace)
        .filter(name="Order Completed", contact__isnull=False)
        .order_by("-occurred_at")[:15]
    )
    _mail_each(orders, "thank-you", "order_id", templates["order_thank_you"], MessageClass.TRANSACTIONAL)
    messages_send_due()


def _mail_each(events: Iterable[Event], kind: str, key: str, template: EmailTemplate, message_class: str) -> None:
    """One message to each event's contact, showing that event (its cart, its order)."""
    for event in events:
        messages_enqueue(
            workspace=template.workspace,
            source=str(MessageSource.demo(f"{kind}:{event.properties.get(key, event.pk)}")),
            contacts=Contact.objects.in_workspace(template.workspace).filter(pk=event.contact_id).exclude(email=""),
            template=template,
            message_class=message_class,
            data={"event": event.properties},
        )


def _engagement(workspace: Workspace, rng: random.Random) -> None:
    """Spread the demo month's mail over the last 30 days and give it the engagement a month
    brings, through message_event_record (as webhooks and our tracking endpoints do)."""
    now = timezone.now()
    sent = list(
        Message.objects.in_workspace(workspace)
        .filter(state=MessageState.SENT)
        .exclude(source__startswith=MessageSource.prefix(SourceKind.BROADCAST))  # dated by the broadcast's seed
        .order_by("id")
    )
    # Oldest first in id order: the send log lists by id, newest first, so its dates must agree.
    ages = sorted((rng.uniform(1, 30) for _ in sent), reverse=True)
    for message, age in zip(sent, ages, strict=True):
        sent_at = now - dt.timedelta(days=age)
        Message.objects.filter(pk=message.pk).update(
            created_at=sent_at, due_at=sent_at, claimed_at=sent_at, sent_at=sent_at
        )
        message.sent_at = sent_at
    bounced, complained = sent[3::97], sent[7::151]
    for message in sent:
        at = message.sent_at or now
        key = f"demo:{message.pk}"
        if message in bounced:
            message_event_record(
                message=message,
                type=MessageEventType.BOUNCED,
                occurred_at=at + dt.timedelta(minutes=1),
                event_key=f"{key}:bounce",
                details={"bounce_type": "hard", "mta_response": "550 5.1.1 mailbox unavailable"},
            )
            continue
        _record(message, MessageEventType.DELIVERED, at + dt.timedelta(seconds=20), f"{key}:delivered")
        if rng.random() < 0.12:  # Apple Mail Privacy Protection fetches every image at once
            _record(message, MessageEventType.OPENED, at + dt.timedelta(minutes=2), f"{key}:mpp", machine=True)
        if rng.random() < 0.45:
            # Within 40 hours of the send, and never after now (a click follows within minutes).
            since = (now - at).total_seconds() / 3600
            opened = at + dt.timedelta(hours=rng.uniform(0.2, min(40.0, since - 0.5)))
            _record(message, MessageEventType.OPENED, opened, f"{key}:open")
            if message.links and rng.random() < 0.3:
                clicked = opened + dt.timedelta(minutes=rng.uniform(0.5, 10))
                _record(message, MessageEventType.CLICKED, clicked, f"{key}:click", url=message.links[0])
        if message in complained:
            _record(message, MessageEventType.COMPLAINED, at + dt.timedelta(hours=3), f"{key}:complaint")


def _record(message: Message, type: str, at: dt.datetime, key: str, *, url: str = "", machine: bool = False) -> None:
    message_event_record(
        message=message,
        type=type,
        occurred_at=at,
        event_key=key,
        url=url,
        user_agent=APPLE_PROXY_UA if machine else MAIL_CLIENT_UA,
        is_machine=machine,
    )
