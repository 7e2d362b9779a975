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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import QuerySet
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
    Provider,
    SenderIdentity,
    SendPriority,
    SourceKind,
)
from esp import clock
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


def start_drain() -> None:
    """Start sending after commit (messages made due by another way than queueing: a resume)."""
    _start_drain()


# Every way of queueing many messages ends in this statement: the rows come from `{rows}`, a
# SELECT giving contact_id, to_email and the columns a caller chooses, in this order.
_INSERT = """
    INSERT INTO campaigns_message (
        workspace_id, contact_id, to_email, source, message_class, priority, smart_sending, template_id,
        subject_override, mailing_list_id, provider_id, sender_id, data, due_at, created_at, preheader_override,
        subject, state, reason, error, attempts, provider_message_id, links, delivery_status
    )
    SELECT %s, r.contact_id, r.to_email, r.source, r.message_class, r.priority, r.smart_sending, r.template_id,
        r.subject_override, r.mailing_list_id, r.provider_id, r.sender_id, r.data, r.due_at, %s, %s,
        '', 'queued', '', '', 0, '', '{{}}', ''
    FROM ({rows}) AS r (
        contact_id, to_email, source, message_class, priority, smart_sending, template_id, subject_override,
        mailing_list_id, provider_id, sender_id, data, due_at
    )
    ORDER BY r.contact_id
    ON CONFLICT (workspace_id, source, contact_id) DO NOTHING
    {returning}
"""


def _insert_messages(
    workspace: Workspace,
    now: dt.datetime,
    rows_sql: str,
    rows_params: list[Any],
    *,
    returning: str = "",
    preheader_override: str = "",
) -> tuple[int, list[tuple[Any, ...]]]:
    """Run _INSERT over `rows_sql`; (rows made, the RETURNING rows). `preheader_override` is
    every row's (a broadcast's or its variant's own preheader)."""
    sql = _INSERT.format(rows=rows_sql, returning=returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, now, preheader_override, *rows_params])
        return cursor.rowcount, (cursor.fetchall() if returning else [])


def _check_values(*, message_class: str, priority: int) -> None:
    if message_class not in MessageClass.values:
        raise ValueError(f"unknown message class {message_class!r}")
    if priority not in SendPriority.values:
        raise ValueError(f"unknown send priority {priority!r}")


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
    priority: int = SendPriority.PROMOTIONAL,
    smart_sending: bool = False,
    subject_override: str = "",
) -> int:
    """Queue one message per contact of `contacts` (of this workspace) in one INSERT … SELECT.
    `data` is the Message.data of every row, e.g. {"event": {...}} for the template's `event`.
    A contact that already has a message of this source is left out (ON CONFLICT DO NOTHING),
    so a broadcast or a series step re-run after a crash sends nobody twice. Returns how many
    rows were made. A drain starts after commit when they are due."""
    _check_values(message_class=message_class, priority=priority)
    _check_owner(workspace, template=template, mailing_list=mailing_list, provider=provider, sender=sender)
    now = clock.now()
    due = due_at or now
    # The caller's queryset, reduced to its ids, compiled into the statement as a subquery:
    # the audience never travels through Python.
    ids_sql, ids_params = contacts.order_by().values("pk").query.sql_with_params()
    rows_sql = f"""
        SELECT c.id, c.email, %s::text, %s::text, %s::smallint, %s::boolean, %s::bigint, %s::text, %s::bigint,
            %s::bigint, %s::bigint, %s::jsonb, %s::timestamptz
        FROM audiences_contact c
        WHERE c.workspace_id = %s AND c.id IN ({ids_sql})
    """  # noqa: S608 — the subquery is Django's own compilation of a queryset; values are parameters
    created, _returned = _insert_messages(
        workspace,
        now,
        rows_sql,
        [
            source,
            message_class,
            priority,
            smart_sending,
            template.pk,
            subject_override,
            mailing_list.pk if mailing_list else None,
            provider.pk if provider else None,
            sender.pk if sender else None,
            _json(data or {}),
            due,
            workspace.pk,
            *ids_params,
        ],
    )
    if created and due <= now:
        _start_drain()
    return created


@dataclass(frozen=True)
class Timing:
    """When each message of a snapshot falls due. `start` for all, or `local`: that wall-clock
    time in each contact's own time zone (`zone`, the workspace's, for contacts without a valid
    one); then spread evenly over `spread` in contact order."""

    start: dt.datetime
    local: dt.datetime | None = None  # naive: a wall clock, not an instant
    zone: str = "UTC"
    spread: dt.timedelta | None = None


@transaction.atomic
def messages_enqueue_timed(
    *,
    workspace: Workspace,
    source: str,
    contacts: QuerySet[Contact],
    template: EmailTemplate,
    timing: Timing,
    message_class: str = MessageClass.MARKETING,
    priority: int = SendPriority.PROMOTIONAL,
    subject_override: str = "",
    preheader_override: str = "",
    provider: Provider | None = None,
    sender: SenderIdentity | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Like `messages_enqueue`, each row with its own `due_at` computed in the same statement:
    a wall-clock time read in the contact's zone (`AT TIME ZONE` does the DST arithmetic; a
    zone name PostgreSQL does not know falls back to `timing.zone`), plus its share of the
    spread. One INSERT … SELECT whatever the audience's size."""
    _check_values(message_class=message_class, priority=priority)
    _check_owner(workspace, template=template, provider=provider, sender=sender)
    now = clock.now()
    ids_sql, ids_params = contacts.order_by().values("pk").query.sql_with_params()
    base = "%s::timestamptz"
    base_params: list[Any] = [timing.start]
    if timing.local is not None:
        base = "(%s::timestamp AT TIME ZONE COALESCE(z.name, %s))"
        base_params = [timing.local.replace(tzinfo=None), timing.zone]
    spread = "+ %s::interval * (row_number() OVER (ORDER BY c.id) - 1) / GREATEST(count(*) OVER (), 1)"
    rows_sql = f"""
        SELECT c.id, c.email, %s::text, %s::text, %s::smallint, false, %s::bigint, %s::text, NULL::bigint,
            %s::bigint, %s::bigint, %s::jsonb, {base} {spread if timing.spread else ""}
        FROM audiences_contact c
        LEFT JOIN (SELECT name FROM pg_timezone_names) z ON z.name = NULLIF(c.time_zone, '')
        WHERE c.workspace_id = %s AND c.id IN ({ids_sql})
    """  # noqa: S608 — fixed clauses and Django's own compilation of a queryset; values are parameters
    params: list[Any] = [
        source,
        message_class,
        priority,
        template.pk,
        subject_override,
        provider.pk if provider else None,
        sender.pk if sender else None,
        _json(data or {}),
        *base_params,
        *([timing.spread] if timing.spread else []),
        workspace.pk,
        *ids_params,
    ]
    created, _returned = _insert_messages(workspace, now, rows_sql, params, preheader_override=preheader_override)
    if created:
        _start_drain()
    return created


@dataclass(frozen=True)
class QueuedMessage:
    """One message to queue with `messages_enqueue_rows`: each row its own source (a series
    step of one enrollment: MessageSource.step), template and data."""

    contact_id: int
    source: str
    template_id: int
    message_class: str
    data: dict[str, Any] = field(default_factory=dict)
    priority: int = SendPriority.TRIGGERED
    smart_sending: bool = False
    # None: due now (the engine's clock).
    due_at: dt.datetime | None = None
    mailing_list_id: int | None = None
    # The step's own subject (template language, like the template's); empty: the template's.
    subject_override: str = ""


def _refuse_foreign(workspace: Workspace, rows: Sequence[QueuedMessage]) -> None:
    """Refuse rows naming a contact, template or list of another workspace (or none): one
    query for the whole set."""
    contacts = sorted({row.contact_id for row in rows})
    templates = sorted({row.template_id for row in rows})
    lists = sorted({row.mailing_list_id for row in rows if row.mailing_list_id is not None})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT
                (SELECT count(*) FROM audiences_contact WHERE workspace_id = %(w)s AND id = ANY(%(contacts)s)),
                (SELECT count(*) FROM campaigns_emailtemplate WHERE workspace_id = %(w)s AND id = ANY(%(templates)s)),
                (SELECT count(*) FROM audiences_mailinglist WHERE workspace_id = %(w)s AND id = ANY(%(lists)s))
            """,
            {"w": workspace.pk, "contacts": contacts, "templates": templates, "lists": lists},
        )
        found = cursor.fetchone()
    assert found is not None
    for name, wanted, count in zip(
        ("contact", "template", "mailing list"), (contacts, templates, lists), found, strict=True
    ):
        if count != len(wanted):
            raise ValueError(f"a {name} of these rows belongs to another workspace or does not exist")


@transaction.atomic
def messages_enqueue_rows(*, workspace: Workspace, rows: Sequence[QueuedMessage]) -> dict[str, int]:
    """Queue many messages of different sources (a tick of series steps) in one INSERT …
    SELECT over the rows. A row whose (source, contact) has a message already makes nothing
    (ON CONFLICT DO NOTHING), so a re-run tick finds the message it made before. Returns
    source -> message id for every row, old ones included. Sources must be distinct; the
    contacts, templates and lists must be the workspace's (ValueError otherwise). A drain
    starts after commit when a row is due."""
    if not rows:
        return {}
    if len({row.source for row in rows}) != len(rows):
        raise ValueError("each row needs a source of its own")
    for row in rows:
        _check_values(message_class=row.message_class, priority=row.priority)
    _refuse_foreign(workspace, rows)
    now = clock.now()
    dues = [row.due_at or now for row in rows]
    rows_sql = """
        SELECT c.id, c.email, v.source, v.message_class, v.priority, v.smart_sending, v.template_id,
            v.subject_override, v.mailing_list_id, NULL::bigint, NULL::bigint, v.data::jsonb, v.due_at
        FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::smallint[], %s::boolean[], %s::bigint[], %s::text[],
                    %s::bigint[], %s::text[], %s::timestamptz[])
            AS v (contact_id, source, message_class, priority, smart_sending, template_id, subject_override,
                  mailing_list_id, data, due_at)
        JOIN audiences_contact c ON c.id = v.contact_id AND c.workspace_id = %s
    """
    _created, returned = _insert_messages(
        workspace,
        now,
        rows_sql,
        [
            [row.contact_id for row in rows],
            [row.source for row in rows],
            [row.message_class for row in rows],
            [int(row.priority) for row in rows],
            [row.smart_sending for row in rows],
            [row.template_id for row in rows],
            [row.subject_override for row in rows],
            [row.mailing_list_id for row in rows],
            [_json(row.data) for row in rows],
            dues,
            workspace.pk,
        ],
        returning="RETURNING source, id",
    )
    made = {source: message_id for source, message_id in returned}
    missing = [row for row in rows if row.source not in made]
    if missing:
        # Made by an earlier run (the same source and contact): found by the unique index.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT m.source, m.id FROM campaigns_message m
                JOIN unnest(%s::text[], %s::bigint[]) AS v (source, contact_id)
                  ON m.source = v.source AND m.contact_id = v.contact_id
                WHERE m.workspace_id = %s
                """,
                [[row.source for row in missing], [row.contact_id for row in missing], workspace.pk],
            )
            made.update(dict(cursor.fetchall()))
    if any(due <= now for due in dues):
        _start_drain()
    return made


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
            # Asked for by a shop's backend for one person (a receipt, a reset): it goes
            # before any series or promotion that competes for the same cap.
            priority=SendPriority.TRANSACTIONAL,
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
    due_at: dt.datetime | None = None,
    subject_override: str = "",
    preheader_override: str = "",
    message_class: str | None = None,
    broadcast_id: int | None = None,
) -> Message:
    """A test of `template` to `to_email` (the editor's "send test to me"), personalised for a
    sample contact and event. It goes through the same road as every message but is spared
    caps, quiet hours and list unsubscribes; a hard-bounced, complaining or erased address is
    still refused. It is no contact's message (contact is empty). A broadcast's test
    (`broadcast_id`) is tracked by the broadcast's own rules (campaigns.tracking.rules), as its
    recipients' mail is.

    A series' "send every email to me" also gives when each goes (`due_at`: the send loop
    takes it then), the step's own subject and the class the step sends with."""
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
            message_class=message_class or template.message_class,
            template=template,
            subject_override=subject_override,
            preheader_override=preheader_override,
            to_email=address,
            data=json.loads(
                _json(
                    {
                        "event": event or {},
                        "contact": snapshot,
                        "test": True,
                        **({"broadcast": broadcast_id} if broadcast_id is not None else {}),
                    }
                )
            ),
            due_at=due_at or clock.now(),
        )
        _start_drain()
    return message
