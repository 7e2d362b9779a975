"""GDPR rights of one contact: access (Art. 15, `contact_export`) and erasure (Art. 17,
`contact_erase`).

Later apps hold personal data of a contact too (events, messages, enrollments). They extend
both services without this module importing them (the layers run esp <- audiences <- campaigns
<- automations): in their AppConfig.ready() they append to

- `CONTACT_EXPORTERS`: callables `(contact) -> {section name: JSON-able data}`, merged into the
  export;
- `CONTACT_ERASERS`: callables `(contact) -> None`, run inside the erase transaction before the
  contact row is deleted, to delete or anonymise what the cascade does not reach.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from audiences import hooks
from audiences.models import (
    ConsentRecord,
    Contact,
    ContactAlias,
    Event,
    Subscription,
    Suppression,
    SuppressionReason,
    email_hash,
)
from audiences.segments.services import segment_memberships_forget
from esp.models import OutboxMessage, Workspace

ContactExporter = Callable[[Contact], Mapping[str, Any]]
ContactEraser = Callable[[Contact], None]

CONTACT_FIELDS = (
    "id", "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city", "country",
    "time_zone", "locale", "attributes", "tags", "source", "created_at", "updated_at",
)  # fmt: skip


def _contact_section(contact: Contact) -> dict[str, Any]:
    return {"contact": {name: getattr(contact, name) for name in CONTACT_FIELDS}}


def _subscriptions_section(contact: Contact) -> dict[str, Any]:
    rows = Subscription.objects.filter(workspace_id=contact.workspace_id, contact=contact).select_related(
        "mailing_list"
    )
    return {
        "subscriptions": [
            {
                "list": row.mailing_list_id,
                "list_name": row.mailing_list.name,
                "status": row.status,
                "created_at": row.created_at,
                "confirmed_at": row.confirmed_at,
                "unsubscribed_at": row.unsubscribed_at,
            }
            for row in rows.order_by("id")
        ]
    }


def _consent_section(contact: Contact) -> dict[str, Any]:
    rows = ConsentRecord.objects.filter(workspace_id=contact.workspace_id, contact=contact).order_by(
        "occurred_at", "id"
    )
    return {
        "consent_records": [
            {
                "list": row.mailing_list_id,
                "action": row.action,
                "source": row.source,
                "occurred_at": row.occurred_at,
                "ip_address": row.ip_address,
                "user_agent": row.user_agent,
                "text_shown": row.text_shown,
            }
            for row in rows
        ]
    }


def _suppression_section(contact: Contact) -> dict[str, Any]:
    row = Suppression.objects.filter(workspace_id=contact.workspace_id, email_hash=email_hash(contact.email)).first()
    return {
        "suppression": None if row is None else {"reason": row.reason, "note": row.note, "created_at": row.created_at}
    }


def _outbox_of(workspace_id: int, email: str) -> Q:
    """Outbox rows of the workspace addressed to (or mentioning) the address, in any case."""
    # `to` holds bare addresses or "Name <address>"; bodies may quote the address too.
    return Q(workspace_id=workspace_id) & (
        Q(to__icontains=email)  # ArrayField cast to text: matches any element
        | Q(subject__icontains=email)
        | Q(text_body__icontains=email)
        | Q(html_body__icontains=email)
    )


def _outbox_section(contact: Contact) -> dict[str, Any]:
    rows = OutboxMessage.objects.filter(_outbox_of(contact.workspace_id, contact.email)).order_by("id")
    return {
        "messages": [
            {"subject": row.subject, "to": row.to, "created_at": row.created_at, "text_body": row.text_body}
            for row in rows
        ]
    }


EVENT_FIELDS = (
    "type", "name", "properties", "context", "user_id", "anonymous_id", "message_id", "occurred_at", "received_at",
)  # fmt: skip


def _events_of(contact: Contact) -> Q:
    """The contact's events, and the events not linked to anyone yet that carry one of its ids
    (its external_id or an alias: sent before a merge linked them, or left by one that has not
    run). Unlinked events known only by an email in their traits are not searched: that would
    read every unlinked event of the workspace."""
    ids = [contact.external_id] if contact.external_id else []
    ids += ContactAlias.objects.filter(workspace_id=contact.workspace_id, contact=contact).values_list(
        "alias", flat=True
    )
    unlinked = Q(contact__isnull=True) & (Q(user_id__in=ids) | Q(anonymous_id__in=ids)) if ids else Q(pk__in=[])
    return Q(workspace_id=contact.workspace_id) & (Q(contact=contact) | unlinked)


def _events_section(contact: Contact) -> dict[str, Any]:
    aliases = ContactAlias.objects.filter(workspace_id=contact.workspace_id, contact=contact).order_by("id")
    events = Event.objects.filter(_events_of(contact)).order_by("occurred_at", "id")
    return {"aliases": list(aliases.values_list("alias", flat=True)), "events": list(events.values(*EVENT_FIELDS))}


def _erase_events(contact: Contact) -> None:
    # Linked events and aliases go with the contact (ON DELETE CASCADE); these would not.
    Event.objects.filter(_events_of(contact), contact__isnull=True).delete()


# The extension point: later apps append their exporters (see the module docstring).
CONTACT_EXPORTERS: list[ContactExporter] = [
    _contact_section,
    _subscriptions_section,
    _consent_section,
    _suppression_section,
    _outbox_section,
    _events_section,
]
# The same for erasure; the built-in steps are in contact_erase itself.
CONTACT_ERASERS: list[ContactEraser] = [_erase_events]


def contact_export(*, workspace: Workspace, contact_id: int) -> dict[str, Any]:
    """Everything the workspace holds about one contact, as JSON-native data."""
    contact = get_object_or_404(Contact.objects.in_workspace(workspace), pk=contact_id)
    export: dict[str, Any] = {"exported_at": timezone.now(), "workspace": workspace.name}
    for exporter in CONTACT_EXPORTERS:
        export.update(exporter(contact))
    result: dict[str, Any] = json.loads(json.dumps(export, cls=DjangoJSONEncoder))
    return result


@transaction.atomic
def contact_erase(*, workspace: Workspace, contact_id: int) -> None:
    """Delete the contact and every trace of its address in the workspace, keeping only a
    suppression by hash so that no later import or form mails the person again.

    The contact's subscriptions and consent records go with it (ON DELETE CASCADE); the
    suppression's address and note are blanked; the outbox mail to or about it is deleted."""
    contact = get_object_or_404(Contact.objects.in_workspace(workspace).select_for_update(), pk=contact_id)
    address = contact.email
    hashed = email_hash(address)
    for eraser in CONTACT_ERASERS:
        eraser(contact)
    segment_memberships_forget(workspace_id=workspace.pk, contacts=Contact.objects.filter(pk=contact.pk))
    contact.delete()
    suppression, created = Suppression.objects.select_for_update().get_or_create(
        workspace=workspace, email_hash=hashed, defaults={"reason": SuppressionReason.ERASED}
    )
    if not created:
        suppression.reason = SuppressionReason.ERASED
        suppression.email = ""
        suppression.note = ""
        suppression.save(update_fields=["reason", "email", "note"])
    # Rows whose hash was computed from a differently written address (stray spaces) still
    # name it in clear text.
    Suppression.objects.in_workspace(workspace).filter(email__iexact=address.strip()).update(email="", note="")
    OutboxMessage.objects.filter(_outbox_of(workspace.pk, address)).delete()
    hooks.contacts_erased.fire(hooks.ContactsErased(workspace.pk, (contact_id,)))
