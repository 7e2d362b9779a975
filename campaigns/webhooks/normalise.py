"""From anymail's normalised tracking event to one of ours (campaigns.models.MessageEventType).

anymail says "bounced" for every bounce and "deferred" for some temporary failures; whether a
bounce is hard (suppress now) or soft (count it) is in each ESP's own payload, read here:
- Amazon SES: bounce.bounceType "Transient" is soft ("Permanent" and "Undetermined" are hard);
- Mailgun: "failed" with severity "temporary" (anymail: deferred) is soft, except greylisting,
  which is only a delay;
- Postmark: Bounce of Type SoftBounce, Transient or DnsError is soft;
- SendGrid: a bounce of type "blocked" is soft; SparkPost: the soft bounce classes;
- Brevo: "soft_bounce"; Mailjet: hard_bounce false; Resend: bounce.type "Transient".

The event's key is "<kind>:<the ESP's event id>" where the ESP gives a stable one, else
"<kind>:sha256:<hash of the raw event>" — the same payload posted again makes the same key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from anymail.signals import AnymailTrackingEvent, EventType
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.models import MessageEventType, ProviderKind
from campaigns.providers.base import ESP_MESSAGE_ID

POSTMARK_SOFT_TYPES = {"SoftBounce", "Transient", "DnsError"}
# SparkPost bounce classes that say nothing against the address itself: soft bounces, DNS,
# mailbox full, too large, timeout, generic, blocks by the receiver, auto-replies, transient,
# challenge-response. 10 (invalid recipient), 25 (admin failure), 30 (no RCPT) and 90
# (unsubscribe) are hard.
SPARKPOST_SOFT_CLASSES = {"1", "20", "21", "22", "23", "24", "40", "50", "51", "52", "53", "54", "60", "70", "100"}

_DIRECT = {
    EventType.DELIVERED: MessageEventType.DELIVERED,
    EventType.COMPLAINED: MessageEventType.COMPLAINED,
    EventType.OPENED: MessageEventType.OPENED,
    EventType.CLICKED: MessageEventType.CLICKED,
    EventType.UNSUBSCRIBED: MessageEventType.UNSUBSCRIBED,
    EventType.REJECTED: MessageEventType.REJECTED,
    EventType.FAILED: MessageEventType.REJECTED,
}


@dataclass(frozen=True)
class Observed:
    type: str
    event_key: str
    occurred_at: dt.datetime
    url: str = ""
    user_agent: str = ""
    ip: str = ""
    # The ESP itself says the open was automated (SendGrid's sg_machine_open, Brevo's proxy opens).
    machine: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def raw_event(event: AnymailTrackingEvent) -> dict[str, Any]:
    """The ESP's event as plain JSON-able data (Mailgun's legacy form posts are QueryDicts)."""
    raw = event.esp_event
    if hasattr(raw, "lists"):
        return {key: values[-1] if len(values) == 1 else values for key, values in raw.lists()}
    return raw if isinstance(raw, dict) else {"value": raw}


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _sparkpost_inner(raw: dict[str, Any]) -> dict[str, Any]:
    msys = raw.get("msys") or {}
    return next(iter(msys.values()), {}) if isinstance(msys, dict) else {}


def _is_soft_bounce(kind: str, raw: dict[str, Any]) -> bool:
    if kind == ProviderKind.SES:
        return _get(raw, "bounce", "bounceType") == "Transient"
    if kind == ProviderKind.POSTMARK:
        return raw.get("Type") in POSTMARK_SOFT_TYPES
    if kind == ProviderKind.SENDGRID:
        return raw.get("type") == "blocked"
    if kind == ProviderKind.SPARKPOST:
        return str(_sparkpost_inner(raw).get("bounce_class")) in SPARKPOST_SOFT_CLASSES
    if kind == ProviderKind.BREVO:
        return raw.get("event") == "soft_bounce"
    if kind == ProviderKind.MAILJET:
        return raw.get("hard_bounce") is False
    if kind == ProviderKind.RESEND:
        return _get(raw, "data", "bounce", "type") == "Transient"
    return False


def event_type(kind: str, event: AnymailTrackingEvent, raw: dict[str, Any]) -> str | None:
    """Our type for the event, or None for what we do not record (queued, sent, autoresponses,
    subscriptions, inbound, unknown)."""
    anymail_type = event.event_type
    if kind == ProviderKind.POSTMARK:
        if raw.get("RecordType") == "Bounce" and raw.get("Type") in POSTMARK_SOFT_TYPES:
            return MessageEventType.SOFT_BOUNCED
        if raw.get("RecordType") == "SubscriptionChange" and anymail_type != EventType.UNSUBSCRIBED:
            # The suppression Postmark added after a bounce or complaint it has already
            # reported through its own Bounce / SpamComplaint webhook: not a second event.
            return None
    if anymail_type == EventType.BOUNCED:
        return MessageEventType.SOFT_BOUNCED if _is_soft_bounce(kind, raw) else MessageEventType.BOUNCED
    if anymail_type == EventType.DEFERRED:
        data = raw.get("event-data") or {}
        if kind == ProviderKind.MAILGUN and data.get("event") == "failed" and data.get("reason") != "greylisted":
            return MessageEventType.SOFT_BOUNCED
        return MessageEventType.DEFERRED
    if anymail_type == EventType.UNKNOWN and kind == ProviderKind.SES and raw.get("eventType") == "DeliveryDelay":
        return MessageEventType.DEFERRED  # SES event publishing's delay, unnamed by anymail
    return _DIRECT.get(anymail_type)


def _esp_event_id(kind: str, event: AnymailTrackingEvent, raw: dict[str, Any]) -> str:
    if kind == ProviderKind.MAILGUN:
        # Mailgun's own event id, stable across its retries (anymail's is the signature token).
        event_id = _get(raw, "event-data", "id")
        if event_id:
            return str(event_id)
    if kind == ProviderKind.SES:
        # A bounce or complaint has SES's own feedback id; anymail's id is the SNS notification's,
        # which differs when the same event comes again in another notification (a second topic,
        # a re-publish), and the soft bounces "in a row" would then be counted twice.
        feedback_id = _get(raw, "bounce", "feedbackId") or _get(raw, "complaint", "feedbackId")
        ses_message_id = _get(raw, "mail", "messageId")
        if feedback_id and ses_message_id:
            return f"{ses_message_id}:{feedback_id}"
    return str(event.event_id or "")


def event_key(kind: str, event: AnymailTrackingEvent, raw: dict[str, Any]) -> str:
    event_id = _esp_event_id(kind, event, raw)
    if event_id:
        return f"{kind}:{event_id}"[:255]
    content = orjson.dumps(
        {"type": event.event_type, "recipient": event.recipient, "event": raw},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return f"{kind}:sha256:{hashlib.sha256(content).hexdigest()}"


def _occurred_at(kind: str, event: AnymailTrackingEvent, raw: dict[str, Any]) -> dt.datetime:
    if kind == ProviderKind.SES:
        # anymail gives the SNS notification's time; the event's own is inside
        # (bounce.timestamp, delivery.timestamp, open.timestamp, ...).
        name = str(raw.get("eventType") or raw.get("notificationType") or "")
        inner = raw.get(name[:1].lower() + name[1:]) if name else None
        stamp = parse_datetime(str(inner.get("timestamp", ""))) if isinstance(inner, dict) else None
        if stamp is not None:
            return stamp
    return event.timestamp or timezone.now()


def _ip(kind: str, raw: dict[str, Any]) -> str:
    candidates: tuple[Any, ...] = {
        ProviderKind.SES: (_get(raw, "open", "ipAddress"), _get(raw, "click", "ipAddress")),
        ProviderKind.MAILGUN: (_get(raw, "event-data", "ip"),),
        ProviderKind.POSTMARK: (_get(raw, "Geo", "IP"),),
        ProviderKind.SENDGRID: (raw.get("ip"),),
        ProviderKind.SPARKPOST: (_sparkpost_inner(raw).get("ip_address"),),
        ProviderKind.MAILJET: (raw.get("ip"),),
        ProviderKind.RESEND: (_get(raw, "data", "open", "ipAddress"), _get(raw, "data", "click", "ipAddress")),
    }.get(ProviderKind(kind), ())
    return next((str(value) for value in candidates if value), "")


def _machine(kind: str, raw: dict[str, Any]) -> bool:
    if kind == ProviderKind.SENDGRID:
        return bool(raw.get("sg_machine_open"))
    if kind == ProviderKind.BREVO:
        return raw.get("event") in ("proxy_open", "unique_proxy_open")
    return False


def observe(kind: str, event: AnymailTrackingEvent) -> Observed | None:
    raw = raw_event(event)
    our_type = event_type(kind, event, raw)
    if our_type is None:
        return None
    return Observed(
        type=our_type,
        event_key=event_key(kind, event, raw),
        occurred_at=_occurred_at(kind, event, raw),
        url=str(event.click_url or ""),
        user_agent=str(event.user_agent or ""),
        ip=_ip(kind, raw),
        machine=_machine(kind, raw),
        details={
            "esp": kind,
            "esp_event_type": event.event_type,
            "recipient": event.recipient or "",
            "description": event.description or "",
            "mta_response": event.mta_response or "",
            "reject_reason": event.reject_reason or "",
            "esp_event": raw,
        },
    )


def our_message_id(event: AnymailTrackingEvent) -> int | None:
    """Our Message id when the sender put it in the message's metadata (ESP_MESSAGE_ID)."""
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    value = str(metadata.get(ESP_MESSAGE_ID, ""))
    return int(value) if value.isdigit() and len(value) < 19 else None
