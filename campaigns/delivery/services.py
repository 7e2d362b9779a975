"""Creating messages: the only way anything asks for an email to be sent.

Broadcasts and series steps call `messages_enqueue` with a queryset of contacts (one INSERT …
SELECT for the whole audience), the transactional API calls `message_send_transactional`, the
editor's "send test to me" calls `message_send_test`. Each makes Message rows (DESIGN rule 3:
unique on workspace, source and contact, so asking twice makes nothing new) and, after commit,
starts a drain (DESIGN rule 4). Everything else — checks, rendering, sending — happens in the
drain (campaigns.delivery.sender), the same for every kind of message.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.contacts import parse_contact
from audiences.models import Contact, MailingList, Suppression, email_hash, normalise_email
from audiences.services import contact_save, is_suppressed
from campaigns.delivery.checks import HARD_SUPPRESSION
from campaigns.models import (
    EmailTemplate,
    Message,
    MessageClass,
    MessageSource,
    MessageState,
    Provider,
    SenderIdentity,
    SourceKind,
)
from esp.models import Workspace
from esp.queue import enqueue_after_commit

MAX_IDEMPOTENCY_KEY = 200 - len(MessageSource.prefix(SourceKind.TRANSACTIONAL))


def _json(value: Any) -> str:
    # Event data may carry dates and decimals (a shop's order); stored as JSON text.
    return json.dumps(value, cls=DjangoJSONEncoder)


def _check_owner(workspace: Workspace, **objects: Any) -> None:
    for name, obj in objects.items():
        if obj is not None and obj.workspace_id != workspace.pk:
            raise ValueError(f"{name} belongs to another workspace")


def _start_drain() -> None:
    from campaigns.tasks import send_messages

    enqueue_after_commit(send_messages)


@transaction.atomic
def messages_enqueue(
    *,
    workspace: Workspace,
    source: str,
    contacts: QuerySet[Contact],
    template: EmailTemplate,
    message_class: str,
    mailing_list: MailingList | None = None,
    data: dict[str, Any] | None = None,
    due_at: dt.datetime | None = None,
    provider: Provider | None = None,
    sender: SenderIdentity | None = None,
) -> int:
    """Queue one message per contact of `contacts` (of this workspace) in one INSERT … SELECT.
    `data` is the Message.data of every row, e.g. {"event": {...}} for the template's `event`.
    A contact that already has a message of this source is left out (ON CONFLICT DO NOTHING),
    so a broadcast or a series step re-run after a crash sends nobody twice. Returns how many
    rows were made. A drain starts after commit when they are due."""
    if message_class not in MessageClass.values:
        raise ValueError(f"unknown message class {message_class!r}")
    _check_owner(workspace, template=template, mailing_list=mailing_list, provider=provider, sender=sender)
    now = timezone.now()
    due = due_at or now
    # The caller's queryset, reduced to its ids, compiled into the statement as a subquery:
    # the audience never travels through Python.
    ids_sql, ids_params = contacts.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO campaigns_message (
                workspace_id, contact_id, source, message_class, template_id, mailing_list_id, provider_id,
                sender_id, to_email, subject, data, state, reason, error, attempts, due_at, created_at,
                provider_message_id, links, delivery_status
            )
            SELECT %s, c.id, %s, %s, %s, %s, %s, %s, c.email, '', %s::jsonb, %s, '', '', 0, %s, %s, '', '{{}}', ''
            FROM audiences_contact c
            WHERE c.workspace_id = %s AND c.id IN ({ids_sql})
            ORDER BY c.id
            ON CONFLICT (workspace_id, source, contact_id) DO NOTHING
            """,  # noqa: S608 — the subquery is Django's own compilation of a queryset; values are parameters
            [
                workspace.pk,
                source,
                message_class,
                template.pk,
                mailing_list.pk if mailing_list else None,
                provider.pk if provider else None,
                sender.pk if sender else None,
                _json(data or {}),
                MessageState.QUEUED,
                due,
                now,
                workspace.pk,
                *ids_params,
            ],
        )
        created = cursor.rowcount
    if created and due <= now:
        _start_drain()
    return created


def _tx_lock(workspace: Workspace, source: str) -> None:
    """Serialise requests with the same idempotency key (a client retrying while its first
    request is still running): the second one waits and then finds the first one's row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"message:{workspace.pk}:{source}"])


def _tx_recipient(workspace: Workspace, email: str | None, contact_id: int | None) -> tuple[Contact | None, str]:
    if contact_id is not None:
        contact = Contact.objects.in_workspace(workspace).filter(pk=contact_id).first()
        if contact is None:
            raise ValidationError({"contact": _("No contact with this id in the workspace.")})
        return contact, contact.email
    address = normalise_email(email or "")
    if not address:
        raise ValidationError({"contact": _("Give the contact's email or id.")})
    contact = Contact.objects.in_workspace(workspace).filter(email__lower=address.lower()).first()
    if contact is not None:
        return contact, contact.email
    try:
        item = parse_contact({"email": address}, {})
    except ValidationError as error:
        raise ValidationError({"contact.email": error.message_dict.get("email", error.messages)}) from error
    if is_suppressed(workspace=workspace, email=item.email):
        # A suppressed address is never made a contact. The message still goes out when the
        # suppression allows transactional mail (an unsubscribe); the send-time check decides.
        return None, item.email
    contact, _created = contact_save(workspace=workspace, data={"email": item.email})
    return contact, contact.email


def message_send_transactional(
    *,
    workspace: Workspace,
    template: EmailTemplate,
    email: str | None = None,
    contact_id: int | None = None,
    data: dict[str, Any],
    idempotency_key: str,
) -> tuple[Message, bool]:
    """One message of `template` to a contact given by id or by address (an unknown address
    becomes a contact). `data` is the template's `event`. The message class is the template's.
    The same idempotency key again returns the first request's message and False."""
    _check_owner(workspace, template=template)
    key = idempotency_key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            {"idempotency_key": _("Give a key of 1 to %(n)d characters.") % {"n": MAX_IDEMPOTENCY_KEY}}
        )
    source = str(MessageSource.transactional(key))
    with transaction.atomic():
        _tx_lock(workspace, source)
        existing = Message.objects.in_workspace(workspace).filter(source=source).order_by("id").first()
        if existing is not None:
            return existing, False
        contact, address = _tx_recipient(workspace, email, contact_id)
        message = Message.objects.create(
            workspace=workspace,
            contact=contact,
            source=source,
            message_class=template.message_class,
            template=template,
            to_email=address,
            data=json.loads(_json({"event": data})),
        )
        _start_drain()
    return message, True


def message_send_test(
    *,
    workspace: Workspace,
    template: EmailTemplate,
    to_email: str,
    sample_contact: Contact | None = None,
    sample_data: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
) -> Message:
    """A test of `template` to `to_email` (the editor's "send test to me"), personalised for a
    sample contact and event. It goes through the same road as every message but is spared
    caps, quiet hours and list unsubscribes; a hard-bounced, complaining or erased address is
    still refused. It is no contact's message (contact is empty)."""
    from campaigns.delivery.composer import contact_as_dict

    _check_owner(workspace, template=template, sample_contact=sample_contact)
    address = normalise_email(to_email)
    blocked = (
        Suppression.objects.in_workspace(workspace)
        .filter(email_hash=email_hash(address), reason__in=HARD_SUPPRESSION)
        .first()
    )
    if blocked is not None:
        # It would be suppressed at send time: say so now rather than promise a test.
        raise ValidationError(
            _("%(email)s is on the suppression list (%(reason)s): no email can be sent to it.")
            % {"email": address, "reason": blocked.get_reason_display()}
        )
    # A contact of the workspace, else the given sample data (the editor's built-in person).
    snapshot = contact_as_dict(sample_contact) if sample_contact is not None else dict(sample_data or {})
    with transaction.atomic():
        message = Message.objects.create(
            workspace=workspace,
            contact=None,
            source=str(MessageSource.test()),
            message_class=template.message_class,
            template=template,
            to_email=address,
            data=json.loads(_json({"event": event or {}, "contact": snapshot, "test": True})),
        )
        _start_drain()
    return message
