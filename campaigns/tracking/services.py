"""What the recipient-facing endpoints do: find the message of a token, record opens and
clicks, unsubscribe, apply the preference center, re-render for the browser.

A token names one message (the HMAC binds its id), and everything here acts only on that
message's workspace, contact and list; the person behind a token can change their own
subscriptions and nothing else. Subscriptions change through audiences.services, so each
change leaves the same consent record a form or the admin would."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import (
    ConsentAction,
    ConsentRecord,
    Contact,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    email_hash,
)
from audiences.services import (
    ConsentContext,
    subscription_subscribe,
    subscription_unsubscribe,
    suppression_add,
    suppression_lift,
)
from campaigns.events import message_event_record
from campaigns.models import Message, MessageEventType, MessageSource
from campaigns.tracking.machine import classify
from campaigns.tracking.tokens import read_link_token, read_message_token

ACTIVE = (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING)


# --- tokens -> messages -------------------------------------------------------------------


def _messages() -> Any:
    return Message.objects.select_related("workspace", "contact", "mailing_list", "template")


def message_by_token(token: str) -> Message | None:
    message_id = read_message_token(token)
    return None if message_id is None else _messages().filter(pk=message_id).first()


def message_link_by_token(token: str) -> tuple[Message, int, str] | None:
    """The message, link index and stored URL of a click token; None for a forged token or an
    index the message does not have."""
    parsed = read_link_token(token)
    if parsed is None:
        return None
    message_id, index = parsed
    message = Message.objects.select_related("workspace").filter(pk=message_id).first()
    if message is None or index >= len(message.links):
        return None
    return message, index, message.links[index]


def is_test(message: Message) -> bool:
    # "Send test to me" goes to a member of the workspace: their opens and clicks are no
    # engagement of any contact.
    return MessageSource.parse(message.source).is_test or bool((message.data or {}).get("test"))


# --- opens and clicks ---------------------------------------------------------------------


def _agent_hash(user_agent: str) -> str:
    return hashlib.sha256(user_agent.encode()).hexdigest()[:12]


def _minute(now: dt.datetime) -> int:
    return int(now.timestamp()) // 60


def open_record(*, message: Message, user_agent: str, ip: str, method: str, now: dt.datetime | None = None) -> bool:
    """Record an open of the message from the pixel. One event per message, user agent and
    minute: a reload storm or a client fetching the image twice is one open. Returns whether a
    new event was stored."""
    if is_test(message):
        return False
    now = now or timezone.now()
    verdict = classify(kind="open", user_agent=user_agent, ip=ip, method=method, sent_at=message.sent_at, now=now)
    return message_event_record(
        message=message,
        type=MessageEventType.OPENED,
        occurred_at=now,
        event_key=f"open:{message.pk}:{_minute(now)}:{_agent_hash(user_agent)}",
        user_agent=user_agent,
        is_machine=verdict.is_machine,
        details=verdict.details(),
    )


def click_record(
    *, message: Message, index: int, url: str, user_agent: str, ip: str, method: str, now: dt.datetime | None = None
) -> bool:
    """Record a click on the message's link `index`: one per link, user agent and minute."""
    if is_test(message):
        return False
    now = now or timezone.now()
    verdict = classify(kind="click", user_agent=user_agent, ip=ip, method=method, sent_at=message.sent_at, now=now)
    return message_event_record(
        message=message,
        type=MessageEventType.CLICKED,
        occurred_at=now,
        event_key=f"click:{message.pk}:{index}:{_minute(now)}:{_agent_hash(user_agent)}",
        url=url,
        user_agent=user_agent,
        is_machine=verdict.is_machine,
        details={"link": index, **verdict.details()},
    )


# --- unsubscribe --------------------------------------------------------------------------


@dataclass(frozen=True)
class Unsubscribed:
    # "list": from the message's list; "all": from all marketing; "none": nobody to unsubscribe
    # (an erased contact, a test message).
    scope: str
    mailing_list: MailingList | None = None


def _unsubscribe_event(message: Message, scope: str, context: ConsentContext, list_ids: list[int]) -> None:
    # One per message: unsubscribing twice through the same email is one unsubscribe.
    message_event_record(
        message=message,
        type=MessageEventType.UNSUBSCRIBED,
        occurred_at=timezone.now(),
        event_key=f"unsubscribe:{message.pk}",
        user_agent=context.user_agent,
        details={"scope": scope, "lists": list_ids},
    )


def contact_unsubscribe_all(*, message: Message, contact: Contact, context: ConsentContext) -> list[int]:
    """Stop all marketing to the contact: every list they are on is unsubscribed (each with its
    consent record) and the address is suppressed as "unsubscribed", which the send-time check
    honours for every marketing message — lists or not — while transactional mail still
    reaches them. Returns the ids of the lists that changed."""
    workspace = message.workspace
    changed: list[int] = []
    active = (
        Subscription.objects.in_workspace(workspace)
        .filter(contact=contact, status__in=ACTIVE)
        .select_related("mailing_list")
    )
    for subscription in active:  # the lists of one person: a handful of rows
        subscription_unsubscribe(
            workspace=workspace, contact=contact, mailing_list=subscription.mailing_list, context=context
        )
        changed.append(subscription.mailing_list_id)
    already = Suppression.objects.in_workspace(workspace).filter(email_hash=email_hash(contact.email)).exists()
    if not already:
        suppression_add(
            workspace=workspace,
            email=contact.email,
            reason=SuppressionReason.UNSUBSCRIBED,
            note=_("Unsubscribed from all through message %(id)s") % {"id": message.pk},
        )
        # The consent record of "all" (no list), next to the per-list ones.
        ConsentRecord.objects.create(
            workspace=workspace,
            contact=contact,
            mailing_list=None,
            action=ConsentAction.UNSUBSCRIBED,
            source=context.source,
            ip_address=context.ip_address,
            user_agent=context.user_agent[:400],
            text_shown=context.text_shown,
        )
    return changed


@transaction.atomic
def message_unsubscribe(*, message: Message, context: ConsentContext) -> Unsubscribed:
    """The unsubscribe link and the RFC 8058 one-click POST: from the message's list when it
    was sent to a list the contact is on, otherwise from all marketing. Idempotent."""
    contact = message.contact
    if contact is None or is_test(message):
        return Unsubscribed("none")
    mailing_list = message.mailing_list
    if mailing_list is not None:
        subscription = subscription_unsubscribe(
            workspace=message.workspace, contact=contact, mailing_list=mailing_list, context=context
        )
        if subscription is not None:
            _unsubscribe_event(message, "list", context, [mailing_list.pk])
            return Unsubscribed("list", mailing_list)
    # No list, or the contact is not on it (removed since): the request to stop is honoured
    # the only other way there is.
    changed = contact_unsubscribe_all(message=message, contact=contact, context=context)
    _unsubscribe_event(message, "all", context, changed)
    return Unsubscribed("all")


# --- preference center --------------------------------------------------------------------


@dataclass(frozen=True)
class ListChoice:
    mailing_list: MailingList
    status: str  # the contact's subscription status, "" when they never were on the list

    @property
    def is_on(self) -> bool:
        return self.status in ACTIVE


@dataclass
class Preferences:
    choices: list[ListChoice]
    # "unsubscribed" (from all, by the person: they may opt back in here), another
    # SuppressionReason (bounce, complaint, …: no list can be chosen), or "".
    suppression: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.suppression) and self.suppression != SuppressionReason.UNSUBSCRIBED


def preferences_of(*, message: Message, contact: Contact) -> Preferences:
    """The lists the person may choose from: the workspace's public lists and every list they
    have a subscription to (private lists they were put on can be left, not joined)."""
    workspace = message.workspace
    statuses = dict(
        Subscription.objects.in_workspace(workspace).filter(contact=contact).values_list("mailing_list_id", "status")
    )
    lists = MailingList.objects.in_workspace(workspace).filter(Q(is_public=True) | Q(pk__in=list(statuses)))
    suppression = (
        Suppression.objects.in_workspace(workspace)
        .filter(email_hash=email_hash(contact.email))
        .values_list("reason", flat=True)
        .first()
    )
    return Preferences(
        choices=[ListChoice(m, statuses.get(m.pk, "")) for m in lists.order_by("name", "pk")],
        suppression=suppression or "",
    )


def _lift_own_unsubscribe(message: Message, contact: Contact) -> None:
    # The person opts back in after "unsubscribe from all": their own suppression goes, never
    # one for a bounce or complaint (those only an owner lifts).
    own = (
        Suppression.objects.in_workspace(message.workspace)
        .filter(email_hash=email_hash(contact.email), reason=SuppressionReason.UNSUBSCRIBED)
        .values_list("pk", flat=True)
        .first()
    )
    if own is not None:
        suppression_lift(workspace=message.workspace, suppression_id=own)


@transaction.atomic
def preferences_apply(
    *,
    message: Message,
    contact: Contact,
    chosen_list_ids: Collection[int],
    unsubscribe_all: bool,
    context_for: Mapping[int, ConsentContext],
    all_context: ConsentContext,
) -> Preferences:
    """Apply the preference form: each offered list ticked is joined (double opt-in lists get a
    confirmation mail), each unticked one left; list ids not offered are ignored. "Unsubscribe
    from all" leaves every list and suppresses marketing. `context_for` holds the consent
    context (with the text shown) of each offered list."""
    before = preferences_of(message=message, contact=contact)
    if unsubscribe_all:
        changed = contact_unsubscribe_all(message=message, contact=contact, context=all_context)
        _unsubscribe_event(message, "all", all_context, changed)
        return preferences_of(message=message, contact=contact)
    errors: list[str] = []
    left: list[int] = []
    joins = {c.mailing_list.pk for c in before.choices if c.mailing_list.pk in chosen_list_ids and not c.is_on}
    if joins and before.blocked:
        errors.append(_("This address can no longer receive our emails, so no list can be chosen."))
        joins = set()
    if joins:
        _lift_own_unsubscribe(message, contact)
    for choice in before.choices:
        list_id = choice.mailing_list.pk
        context = context_for.get(list_id, all_context)
        if list_id in joins:
            try:
                subscription_subscribe(
                    workspace=message.workspace, contact=contact, mailing_list=choice.mailing_list, context=context
                )
            except ValidationError as error:
                errors.extend(error.messages)
        elif choice.is_on and list_id not in chosen_list_ids:
            subscription_unsubscribe(
                workspace=message.workspace, contact=contact, mailing_list=choice.mailing_list, context=context
            )
            left.append(list_id)
    if left:
        _unsubscribe_event(message, "lists", all_context, left)
    after = preferences_of(message=message, contact=contact)
    after.errors = errors
    return after


# --- view in browser ----------------------------------------------------------------------


def browser_html(message: Message) -> str | None:
    """The message rendered again for its contact and data from the template version it was
    sent with (see render_as_sent), with the same click tokens as the email; None when it
    cannot be shown any more (template deleted — its snapshots go with it —, contact erased,
    template no longer renders)."""
    from campaigns.content.errors import TemplateProblem
    from campaigns.content.rendering import contact_as_dict, email_context, render_as_sent
    from campaigns.tracking.headers import message_urls
    from campaigns.tracking.links import retrack_html
    from campaigns.tracking.rules import message_rules

    if message.template is None:
        return None
    data = message.data or {}
    snapshot = data.get("contact")
    if is_test(message) and isinstance(snapshot, dict):
        contact: dict[str, Any] = snapshot
    elif message.contact is not None:
        contact = contact_as_dict(message.contact)
    else:
        return None
    event = data.get("event")
    context = email_context(
        workspace=message.workspace,
        contact=contact,
        event=event if isinstance(event, dict) else {},
        urls=message_urls(message),
    )
    try:
        rendered = render_as_sent(
            message.template,
            context,
            version_id=message.template_version,
            subject=message.subject_override,
            preheader=message.preheader_override,
        )
    except TemplateProblem:
        return None
    return retrack_html(rendered.html, message=message, settings=message_rules(message))
