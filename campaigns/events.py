"""What happened to a sent message, from whichever side reports it: the providers' webhooks
(campaigns.webhooks) and our own open pixel, click redirect and unsubscribe endpoints
(campaigns.tracking) all record through `message_event_record`.

One event is one MessageEvent row, unique on (workspace, event_key): a replayed webhook or a
double-fired pixel is stored once and changes nothing the second time. The same statement that
inserts the row moves the Message's delivery status and first-seen timestamps, so the send log
never disagrees with its events. Recording runs for every open and click, so it is a few
statements: the insert + update, the engagement event for the audiences event store, and —
only for bounces and complaints — the suppression.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences.ingest import ContactEvent, events_record_for_contacts
from audiences.models import SuppressionReason
from audiences.services import suppression_add
from campaigns.models import (
    DeliverySettings,
    DeliveryStatus,
    Message,
    MessageEventType,
    MessageSource,
    MessageState,
    SkipReason,
)

logger = logging.getLogger(__name__)

# The names segments and series see in the event store.
ENGAGEMENT_EVENT_NAMES: dict[str, str] = {
    MessageEventType.DELIVERED: "Email Delivered",
    MessageEventType.DEFERRED: "Email Deferred",
    MessageEventType.BOUNCED: "Email Bounced",
    MessageEventType.SOFT_BOUNCED: "Email Bounced",
    MessageEventType.COMPLAINED: "Email Complained",
    MessageEventType.OPENED: "Email Opened",
    MessageEventType.CLICKED: "Email Clicked",
    MessageEventType.UNSUBSCRIBED: "Email Unsubscribed",
}

# Webhooks arrive out of order (a "delivered" retried after the complaint, a deferral after
# the delivery): the delivery status only ever moves up this ladder.
STATUS_LADDER = [
    DeliveryStatus.NONE,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.SOFT_BOUNCED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.COMPLAINED,
]
_STATUS_OF_EVENT: dict[str, str] = {
    MessageEventType.DELIVERED: DeliveryStatus.DELIVERED,
    MessageEventType.DEFERRED: DeliveryStatus.DEFERRED,
    MessageEventType.BOUNCED: DeliveryStatus.BOUNCED,
    MessageEventType.SOFT_BOUNCED: DeliveryStatus.SOFT_BOUNCED,
    MessageEventType.COMPLAINED: DeliveryStatus.COMPLAINED,
}

# Insert the event; only if it is new (a replay inserts nothing and so updates nothing), move
# the message. Timestamps keep the earliest occurrence (LEAST ignores NULL), so an event that
# arrives late still counts from when it happened. Opens and clicks that look automated are
# stored but move no engagement timestamp. The template's name rides along for the
# engagement event's properties.
_RECORD = """
WITH event AS (
    INSERT INTO campaigns_messageevent (
        workspace_id, message_id, contact_id, type, occurred_at, event_key, url, user_agent, is_machine, details
    )
    VALUES (%(ws)s, %(message)s, %(contact)s, %(type)s, %(at)s, %(key)s, %(url)s, %(ua)s, %(machine)s, %(details)s)
    ON CONFLICT (workspace_id, event_key) DO NOTHING
    RETURNING id
), moved AS (
    UPDATE campaigns_message SET
        delivery_status = CASE
            WHEN array_position(%(ladder)s::text[], %(status)s::text)
                > array_position(%(ladder)s::text[], delivery_status::text)
            THEN %(status)s ELSE delivery_status END,
        delivered_at = CASE WHEN %(type)s = 'delivered' THEN LEAST(delivered_at, %(at)s) ELSE delivered_at END,
        bounced_at = CASE WHEN %(type)s = 'bounced' THEN LEAST(bounced_at, %(at)s) ELSE bounced_at END,
        complained_at = CASE WHEN %(type)s = 'complained' THEN LEAST(complained_at, %(at)s) ELSE complained_at END,
        unsubscribed_at = CASE
            WHEN %(type)s = 'unsubscribed' THEN LEAST(unsubscribed_at, %(at)s) ELSE unsubscribed_at END,
        opened_at = CASE
            WHEN %(type)s IN ('opened', 'clicked') AND NOT %(machine)s THEN LEAST(opened_at, %(at)s) ELSE opened_at END,
        clicked_at = CASE
            WHEN %(type)s = 'clicked' AND NOT %(machine)s THEN LEAST(clicked_at, %(at)s) ELSE clicked_at END,
        state = CASE WHEN %(type)s = 'rejected' AND state IN ('sent', 'in_doubt') THEN %(failed)s ELSE state END,
        reason = CASE WHEN %(type)s = 'rejected' AND state IN ('sent', 'in_doubt') THEN %(rejected)s ELSE reason END
    WHERE id = %(message)s AND EXISTS (SELECT 1 FROM event)
)
SELECT (SELECT id FROM event), (SELECT name FROM campaigns_emailtemplate WHERE id = %(template)s)
"""

# Soft bounces in a row: distinct messages of the contact that soft-bounced since its last
# delivery (an ESP that retries reports one message's soft bounce several times; that is one).
# Both halves are range scans of the partial index message_event_engagement.
_SOFT_BOUNCES_IN_A_ROW = """
SELECT count(DISTINCT message_id) FROM campaigns_messageevent
WHERE contact_id = %(contact)s AND type = 'soft_bounced' AND NOT is_machine
  AND occurred_at > coalesce((
      SELECT max(occurred_at) FROM campaigns_messageevent
      WHERE contact_id = %(contact)s AND type = 'delivered' AND NOT is_machine
  ), '-infinity')
"""


def engagement_message_id(event_key: str) -> str:
    """The event store's messageId of a message event: derived from the event key, so a
    replay is stored once there too."""
    return "esp-email-" + hashlib.sha256(event_key.encode()).hexdigest()[:40]


def message_event_record(
    *,
    message: Message,
    type: str,
    occurred_at: dt.datetime | None,
    event_key: str,
    url: str = "",
    user_agent: str = "",
    is_machine: bool = False,
    details: dict[str, Any] | None = None,
) -> bool:
    """Record one event of the message. False when `event_key` was recorded before (nothing
    changes then). A hard bounce or a complaint suppresses the address; soft bounces do once
    the contact had the workspace's soft_bounce_limit of them in a row."""
    if type not in MessageEventType.values:
        raise ValueError(f"unknown message event type {type!r}")
    occurred_at = occurred_at or timezone.now()
    status = _STATUS_OF_EVENT.get(type)
    # savepoint=False: called inside another service's transaction (an unsubscribe), a
    # savepoint would only add round trips; nothing here catches an error to carry on.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(
                _RECORD,
                {
                    "ws": message.workspace_id,
                    "message": message.pk,
                    "contact": message.contact_id,
                    "type": type,
                    "at": occurred_at,
                    "key": event_key[:255],
                    "url": url,
                    "ua": user_agent[:400],
                    "machine": is_machine,
                    "details": orjson.dumps(details or {}, default=str).decode(),
                    "ladder": [str(step) for step in STATUS_LADDER],
                    "status": str(status) if status is not None else None,
                    "failed": MessageState.FAILED,
                    "rejected": SkipReason.REJECTED,
                    "template": message.template_id,
                },
            )
            event_id, template_name = cursor.fetchone()  # type: ignore[misc]
        if event_id is None:
            return False
        name = ENGAGEMENT_EVENT_NAMES.get(type)
        if name and message.contact_id is not None and not _is_test(message):
            properties: dict[str, Any] = {
                "message_id": message.pk,
                "template_id": message.template_id,
                "template_name": template_name or "",
                "source": message.source,
                "url": url,
                "is_machine": is_machine,
            }
            if type in (MessageEventType.BOUNCED, MessageEventType.SOFT_BOUNCED):
                properties["bounce_type"] = "hard" if type == MessageEventType.BOUNCED else "soft"
            events_record_for_contacts(
                workspace_id=message.workspace_id,
                events=[
                    ContactEvent(
                        contact_id=message.contact_id,
                        name=name,
                        properties=properties,
                        message_id=engagement_message_id(event_key),
                        occurred_at=occurred_at,
                    )
                ],
            )
        if type == MessageEventType.BOUNCED:
            _suppress(message, SuppressionReason.HARD_BOUNCE, _("Hard bounce of message %(id)s") % {"id": message.pk})
        elif type == MessageEventType.COMPLAINED:
            _suppress(message, SuppressionReason.COMPLAINT, _("Complaint about message %(id)s") % {"id": message.pk})
        elif type == MessageEventType.SOFT_BOUNCED:
            _suppress_after_soft_bounces(message)
    return True


def _is_test(message: Message) -> bool:
    # "Send test to me" renders for a sample contact but goes to a member: nothing that
    # happens to it is that contact's engagement.
    return MessageSource.parse(message.source).is_test or bool((message.data or {}).get("test"))


def _suppress(message: Message, reason: str, note: str) -> None:
    if message.to_email:
        suppression_add(workspace=message.workspace, email=message.to_email, reason=reason, note=note)


def _suppress_after_soft_bounces(message: Message) -> None:
    if message.contact_id is None:
        return  # erased: nothing to count against (and no address left to reach)
    limit = (
        DeliverySettings.objects.filter(workspace_id=message.workspace_id)
        .values_list("soft_bounce_limit", flat=True)
        .first()
    )
    if limit is None:
        limit = DeliverySettings._meta.get_field("soft_bounce_limit").get_default()
    if not limit:
        return
    with connection.cursor() as cursor:
        cursor.execute(_SOFT_BOUNCES_IN_A_ROW, {"contact": message.contact_id})
        (in_a_row,) = cursor.fetchone()  # type: ignore[misc]
    if in_a_row >= limit:
        _suppress(
            message,
            SuppressionReason.SOFT_BOUNCES,
            ngettext(
                "%(count)s soft bounce in a row, the last of message %(id)s",
                "%(count)s soft bounces in a row, the last of message %(id)s",
                in_a_row,
            )
            % {"count": in_a_row, "id": message.pk},
        )
