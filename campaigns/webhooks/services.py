"""Apply the tracking events of one webhook request to the provider's workspace.

Messages are found only inside the provider's workspace — by the provider's message id (the
indexed (workspace, provider_message_id)) or by our own id in the message's metadata — so a
provider's secret can never reach another workspace's mail. An event naming no message of the
workspace is logged and dropped: the ESP gets its 200 (it would retry an error for days), and
nothing is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from anymail.signals import AnymailTrackingEvent
from django.db.models import Q
from django.utils.translation import gettext as _

from audiences.models import ConsentSource
from audiences.services import ConsentContext
from campaigns.events import message_event_record
from campaigns.models import Message, MessageEventType, Provider
from campaigns.tracking.machine import classify
from campaigns.tracking.services import is_test, message_unsubscribe
from campaigns.webhooks.normalise import Observed, observe, our_message_id

logger = logging.getLogger(__name__)

_ENGAGEMENT = (MessageEventType.OPENED, MessageEventType.CLICKED, MessageEventType.UNSUBSCRIBED)


@dataclass
class Applied:
    recorded: int = 0
    replayed: int = 0
    unknown: int = 0
    ignored: int = 0


def _messages_named(provider: Provider, events: list[tuple[AnymailTrackingEvent, Observed]]) -> dict[str, Message]:
    provider_ids = {str(event.message_id) for event, _observed in events if event.message_id}
    own_ids = {own for event, _observed in events if (own := our_message_id(event)) is not None}
    if not provider_ids and not own_ids:
        return {}
    found = (
        Message.objects.in_workspace(provider.workspace)
        .filter(Q(provider_message_id__in=provider_ids) | Q(pk__in=own_ids))
        .select_related("workspace", "contact", "mailing_list")
    )
    named: dict[str, Message] = {}
    for message in found:
        named[f"id:{message.pk}"] = message
        if message.provider_message_id:
            named[message.provider_message_id] = message
    return named


def _is_machine(observed: Observed, message: Message) -> bool:
    if observed.machine:
        return True
    if observed.type not in (MessageEventType.OPENED, MessageEventType.CLICKED) or not observed.user_agent:
        return False  # the ESP told us nothing to judge by
    verdict = classify(
        kind="open" if observed.type == MessageEventType.OPENED else "click",
        user_agent=observed.user_agent,
        ip=observed.ip,
        method="GET",
        sent_at=message.sent_at,
        now=observed.occurred_at,
    )
    return verdict.is_machine


def tracking_events_apply(*, provider: Provider, events: list[AnymailTrackingEvent]) -> Applied:
    applied = Applied()
    observed = [(event, seen) for event in events if (seen := observe(provider.kind, event)) is not None]
    applied.ignored = len(events) - len(observed)
    named = _messages_named(provider, observed)
    for event, seen in observed:
        own = our_message_id(event)
        message = named.get(f"id:{own}") if own is not None else None
        message = message or named.get(str(event.message_id or ""))
        if message is None:
            applied.unknown += 1
            logger.info(
                "webhook event for no message of the workspace",
                extra={"provider_id": provider.pk, "kind": provider.kind, "provider_message_id": event.message_id},
            )
            continue
        if seen.type in _ENGAGEMENT and is_test(message):
            applied.ignored += 1  # a test sent to a member is no contact's engagement
            continue
        if seen.type == MessageEventType.UNSUBSCRIBED:
            # The ESP's own unsubscribe link or List-Unsubscribe: the same as ours (list, or
            # all marketing), with its consent record; idempotent, so a replay changes nothing.
            context = ConsentContext(
                source=ConsentSource.FORM,
                user_agent=seen.user_agent[:400],
                text_shown=_("Unsubscribed through %(esp)s's unsubscribe link") % {"esp": provider.get_kind_display()},
            )
            message_unsubscribe(message=message, context=context)
            applied.recorded += 1
            continue
        recorded = message_event_record(
            message=message,
            type=seen.type,
            occurred_at=seen.occurred_at,
            event_key=seen.event_key,
            url=seen.url,
            user_agent=seen.user_agent,
            is_machine=_is_machine(seen, message),
            details=seen.details,
        )
        if recorded:
            applied.recorded += 1
        else:
            applied.replayed += 1
    return applied
