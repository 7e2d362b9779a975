"""The contact's emails in the GDPR services of audiences.gdpr: an export section with every
message and its events, and an eraser that takes the person out of the send log.

Erasure keeps the rows (a broadcast's counts stay true) but not the person: the address,
subject, data, error and links of the messages are blanked, and their events lose the url,
user agent, details and an event key that may hold an IP address. The contact's own link goes
when the contact row is deleted (SET_NULL).

Registered from CampaignsConfig.ready() (audiences does not import campaigns).
"""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Prefetch, Q, Value
from django.db.models.functions import Cast, Concat

from audiences.gdpr import CONTACT_ERASERS, CONTACT_EXPORTERS
from audiences.models import Contact
from campaigns.models import Message, MessageEvent

MESSAGE_FIELDS = (
    "source", "message_class", "to_email", "subject", "data", "state", "reason", "error", "created_at", "sent_at",
    "delivery_status", "delivered_at", "opened_at", "clicked_at", "bounced_at", "complained_at", "unsubscribed_at",
    "links",
)  # fmt: skip
EVENT_FIELDS = ("type", "occurred_at", "url", "user_agent", "is_machine", "details")


def _messages_of(contact: Contact) -> Q:
    """The contact's messages, and those without a contact that went to its address or carried
    it as a test's sample contact (test sends have no contact row of their own)."""
    address = contact.email.strip()
    unlinked = Q(contact__isnull=True) & (Q(to_email__iexact=address) | Q(data__contact__email__iexact=address))
    return Q(workspace_id=contact.workspace_id) & (Q(contact_id=contact.pk) | unlinked)


def export_messages(contact: Contact) -> dict[str, Any]:
    events = Prefetch("events", queryset=MessageEvent.objects.order_by("occurred_at", "id"))
    rows = Message.objects.filter(_messages_of(contact)).select_related("template").prefetch_related(events)
    return {
        "email_messages": [
            {
                "id": message.pk,
                "template": message.template.name if message.template else None,
                **{name: getattr(message, name) for name in MESSAGE_FIELDS},
                "events": [{name: getattr(event, name) for name in EVENT_FIELDS} for event in message.events.all()],
            }
            for message in rows.order_by("created_at", "id")
        ]
    }


def erase_messages(contact: Contact) -> None:
    messages = Message.objects.filter(_messages_of(contact))
    MessageEvent.objects.filter(workspace_id=contact.workspace_id, message__in=messages.values("pk")).update(
        url="",
        user_agent="",
        details={},
        # Keys we make hold the IP ("open:<message>:<ip>:<minute>"); unique per workspace, so
        # each becomes its own id.
        event_key=Concat(Value("erased:"), Cast("id", output_field=CharField())),
    )
    messages.update(to_email="", subject="", data={}, error="", links=[])


def register() -> None:
    if export_messages not in CONTACT_EXPORTERS:
        CONTACT_EXPORTERS.append(export_messages)
    if erase_messages not in CONTACT_ERASERS:
        CONTACT_ERASERS.append(erase_messages)
