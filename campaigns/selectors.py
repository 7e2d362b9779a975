"""Reads of the send log: the workspace's messages (the log page and a message's page) and a
contact's messages with their engagement (the profile's "Messages" section).

The Message table grows by a million rows per broadcast, so every read here is shaped for an
index of campaigns.models.Message and never counts the whole table:

- the log: newest first by id on (workspace, -id), keyset-paginated (a cursor is the last id
  shown); its per-state counts read at most COUNT_CAP of the newest matching rows;
- filters that no index covers (state, reason, source, dates, a partial address) are checked
  row by row along that index, so a rare one may read far back: such a page gets
  SCAN_TIMEOUT_MS and then raises MessageQueryTooBroad, and the page asks for a narrower filter
  (the event explorer does the same);
- a full address goes through the contacts with that address and the (contact, -created_at)
  index;
- a contact's messages: (contact, -created_at), keyset on (created_at, id).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Lower
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime

from audiences.models import Contact
from campaigns.models import (
    EmailTemplate,
    Message,
    MessageEvent,
    MessageEventType,
    MessageSource,
    MessageState,
    SourceKind,
)
from esp.input import parse_id
from esp.mail import preview_without_tracking
from esp.models import Workspace

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# The per-state counts of a filter are exact up to this many rows, then shown as "10,000+".
COUNT_CAP = 10_000
# How long a page (or its counts) may read along the (workspace, -id) index for rows that
# match filters no index covers.
SCAN_TIMEOUT_MS = 3000
QUERY_CANCELED = "57014"  # PostgreSQL's query_canceled, raised by statement_timeout
EMAIL_MATCHES = ("exact", "prefix")

T = TypeVar("T")


class MessageQueryTooBroad(Exception):
    """A filter no index covers ran past SCAN_TIMEOUT_MS."""


@dataclass(frozen=True)
class MessageFilters:
    state: str = ""
    reason: str = ""
    message_class: str = ""
    source: str = ""  # a prefix: "broadcast:12", "step:", "tx:"
    template_id: int | None = None
    email: str = ""
    email_match: str = "exact"  # or "prefix"
    since: datetime | None = None  # created at or after (inclusive)
    until: datetime | None = None  # created before (exclusive)

    @property
    def any(self) -> bool:
        return bool(
            self.state
            or self.reason
            or self.message_class
            or self.source
            or self.template_id
            or self.email
            or self.since
            or self.until
        )

    @property
    def needs_scan(self) -> bool:
        """Whether rows are picked by a check along (workspace, -id) rather than by an index."""
        indexed = self.template_id is not None or (self.email and self.email_match == "exact")
        return self.any and not indexed


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    next_cursor: int | None  # the id to continue before


@dataclass(frozen=True)
class StateCount:
    state: str
    label: str
    count: int


@dataclass(frozen=True)
class StateCounts:
    states: list[StateCount] = field(default_factory=list)
    total: int = 0
    capped: bool = False  # counted only the newest COUNT_CAP matching rows


def _filtered(workspace: Workspace, filters: MessageFilters) -> QuerySet[Message]:
    queryset = Message.objects.in_workspace(workspace)
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    if filters.reason:
        queryset = queryset.filter(reason=filters.reason)
    if filters.message_class:
        queryset = queryset.filter(message_class=filters.message_class)
    if filters.source:
        queryset = queryset.filter(source__startswith=filters.source)
    if filters.template_id is not None:
        queryset = queryset.filter(template_id=filters.template_id)
    if filters.since is not None:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(created_at__lt=filters.until)
    email = filters.email.strip().lower()
    if email and filters.email_match == "prefix":
        queryset = queryset.annotate(to_lower=Lower("to_email")).filter(to_lower__startswith=email)
    elif email:
        # The rows of the contacts with this address (on the contacts' unique (workspace,
        # lower(email)) index and then the messages' (contact, …) index), and the rows without
        # a contact (test sends). A message keeps the address it went to: one sent before the
        # contact changed address is found by the old address on the profile, not here.
        contacts = Contact.objects.in_workspace(workspace).annotate(lower_email=Lower("email"))
        queryset = queryset.annotate(to_lower=Lower("to_email")).filter(
            Q(contact_id__in=contacts.filter(lower_email=email).values("pk")) | Q(contact_id__isnull=True),
            to_lower=email,
        )
    return queryset


def _bounded(filters: MessageFilters, read: Callable[[], T]) -> T:
    """Run `read` under SCAN_TIMEOUT_MS when the filters make it scan; MessageQueryTooBroad
    when it runs out."""
    if not filters.needs_scan:
        return read()
    with transaction.atomic(), connection.cursor() as db:
        db.execute("SHOW statement_timeout")
        previous = db.fetchone()[0]
        db.execute("SET LOCAL statement_timeout = %s", [SCAN_TIMEOUT_MS])
        try:
            with transaction.atomic():
                return read()
        except OperationalError as error:
            if getattr(error.__cause__, "pgcode", None) != QUERY_CANCELED:
                raise
            raise MessageQueryTooBroad from error
        finally:
            # SET LOCAL would otherwise last until the end of an enclosing transaction.
            db.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def messages_page(
    *, workspace: Workspace, filters: MessageFilters, before: int | None = None, limit: int = PAGE_SIZE
) -> MessagePage:
    """One page of the workspace's messages matching the filters, newest first, with the id
    the next (older) page continues before. Each message comes with its template (name)."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    queryset = _filtered(workspace, filters)
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    queryset = queryset.select_related("template").order_by("-id")

    def read() -> list[Message]:
        return list(queryset[: limit + 1])

    rows = _bounded(filters, read)
    if len(rows) > limit:
        return MessagePage(messages=rows[:limit], next_cursor=rows[limit - 1].pk)
    return MessagePage(messages=rows, next_cursor=None)


def message_state_counts(*, workspace: Workspace, filters: MessageFilters) -> StateCounts:
    """Messages per state among the newest rows matching the filters, at most COUNT_CAP + 1
    of them (the state filter itself left out, so every state of the rest shows): bounded work
    on any log size. Past the cap the counts are those of the newest rows, flagged `capped`."""
    unstated = MessageFilters(**{**filters.__dict__, "state": ""})
    newest = _filtered(workspace, unstated).order_by("-id").values("id")[: COUNT_CAP + 1]
    grouped = (
        Message.objects.filter(id__in=newest)
        .values("state")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("state", "n")
    )
    by_state = dict(_bounded(unstated, lambda: list(grouped)))
    total = sum(by_state.values())
    labels = dict(MessageState.choices)
    states = [
        StateCount(state, str(labels[state]), by_state[state]) for state in MessageState.values if state in by_state
    ]
    return StateCounts(states=states, total=min(total, COUNT_CAP), capped=total > COUNT_CAP)


def message_get(*, workspace: Workspace, email_id: int) -> Message:
    return get_object_or_404(
        Message.objects.in_workspace(workspace).select_related(
            "template", "contact", "provider", "sender", "mailing_list"
        ),
        pk=email_id,
    )


def message_events(*, workspace: Workspace, message: Message) -> list[MessageEvent]:
    """A message's events in the order they happened, on (message, occurred_at)."""
    return list(MessageEvent.objects.in_workspace(workspace).filter(message=message).order_by("occurred_at", "id"))


def templates_for_filter(*, workspace: Workspace) -> list[tuple[int, str]]:
    return list(EmailTemplate.objects.in_workspace(workspace).order_by("name").values_list("pk", "name"))


# --- a contact's messages (the profile) -----------------------------------------------------


@dataclass(frozen=True)
class ContactMessageCursor:
    """The position after the last row of a page: its (created_at, id). Opaque to clients."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> ContactMessageCursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ValueError("not a cursor") from error
        stamp, _sep, message_id = raw.partition("|")
        created_at = parse_datetime(stamp)
        if created_at is None or created_at.tzinfo is None or parse_id(message_id) is None:
            raise ValueError("not a cursor")
        return cls(created_at=created_at, id=int(message_id))


@dataclass(frozen=True)
class ContactMessagePage:
    messages: list[Message]
    next_cursor: ContactMessageCursor | None


def contact_messages(
    *, workspace: Workspace, contact_id: int, cursor: ContactMessageCursor | None = None, limit: int = 20
) -> ContactMessagePage:
    """The contact's messages newest first, on the (contact, -created_at) index."""
    queryset = Message.objects.in_workspace(workspace).filter(contact_id=contact_id)
    if cursor is not None:
        # (created_at, id) < (t, i), spelled so that `created_at <= t` bounds the index range.
        queryset = queryset.filter(
            Q(created_at__lt=cursor.created_at) | Q(created_at=cursor.created_at, id__lt=cursor.id),
            created_at__lte=cursor.created_at,
        )
    rows = list(queryset.select_related("template").order_by("-created_at", "-id")[: limit + 1])
    if len(rows) > limit:
        last = rows[limit - 1]
        return ContactMessagePage(rows[:limit], ContactMessageCursor(created_at=last.created_at, id=last.pk))
    return ContactMessagePage(rows, None)


@dataclass(frozen=True)
class Engagement:
    messages: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int
    complained: int
    last_opened_at: datetime | None
    last_clicked_at: datetime | None


def contact_engagement(*, workspace: Workspace, contact_id: int) -> Engagement:
    """The contact's messages counted by what happened to them (one aggregate over the
    contact's range of (contact, -created_at)), and its last human open and click (one over
    the partial (contact, type, occurred_at) index of human engagement)."""
    totals: dict[str, Any] = (
        Message.objects.in_workspace(workspace)
        .filter(contact_id=contact_id)
        .aggregate(
            messages=Count("*"),
            sent=Count("id", filter=Q(state=MessageState.SENT)),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
            bounced=Count("id", filter=Q(bounced_at__isnull=False)),
            complained=Count("id", filter=Q(complained_at__isnull=False)),
        )
    )
    last: dict[str, Any] = (
        MessageEvent.objects.in_workspace(workspace)
        .filter(contact_id=contact_id, is_machine=False, type__in=[MessageEventType.OPENED, MessageEventType.CLICKED])
        .aggregate(
            last_opened_at=Max("occurred_at", filter=Q(type=MessageEventType.OPENED)),
            last_clicked_at=Max("occurred_at", filter=Q(type=MessageEventType.CLICKED)),
        )
    )
    return Engagement(**totals, **last)


# --- a message's preview ---------------------------------------------------------------------

# The preview's links go nowhere: a marketer clicking in it must not unsubscribe the contact.
PREVIEW_URLS = {"unsubscribe_url": "#", "preferences_url": "#", "view_in_browser_url": "#"}


@dataclass(frozen=True)
class MessagePreview:
    subject: str = ""
    html: str = ""
    text: str = ""
    problem: str = ""  # why it could not be rendered


def message_preview(*, workspace: Workspace, message: Message) -> MessagePreview | None:
    """The message rendered again from the template version it was sent with (a message not
    sent yet: the template's current version), for the contact as it is now (a test send: the
    sample contact it was sent with) and the event it carried. None when the template is gone
    or the content engine is not installed."""
    if message.template is None:
        return None
    try:
        from campaigns.content.errors import TemplateProblem
        from campaigns.content.rendering import contact_as_dict, email_context, render_as_sent
    except ImportError:
        return None
    data = message.data if isinstance(message.data, dict) else {}
    if isinstance(data.get("contact"), dict):
        contact: dict[str, Any] = data["contact"]
    elif message.contact is not None:
        contact = contact_as_dict(message.contact)
    else:
        contact = {}  # erased: render without the person
    event = data.get("event") if isinstance(data.get("event"), dict) else {}
    try:
        context = email_context(workspace=workspace, contact=contact, event=event or {}, urls=dict(PREVIEW_URLS))
        rendered = render_as_sent(
            message.template, context, version_id=message.template_version, subject=message.subject_override
        )
    except TemplateProblem as problem:
        return MessagePreview(problem=str(problem))
    # Rendered without tracking; stripped again in case a template carries a copied tracked URL.
    return MessagePreview(subject=rendered.subject, html=preview_without_tracking(rendered.html), text=rendered.text)


# --- the Overview page's "last sends" ---------------------------------------------------------

# The Overview reads this many newest messages (by the (workspace, -id) index) and no more.
RECENT_WINDOW = 5_000


@dataclass(frozen=True)
class RecentSend:
    template_id: int
    template_name: str
    message_class: str
    sent: int
    opened: int
    clicked: int
    last_sent_at: datetime | None

    @property
    def open_rate(self) -> float:
        return self.opened / self.sent if self.sent else 0.0

    @property
    def click_rate(self) -> float:
        return self.clicked / self.sent if self.sent else 0.0


def recent_sends(*, workspace: Workspace, limit: int = 5) -> list[RecentSend]:
    """The latest emails sent, one row per template, with their open and click rates (human
    opens only: `opened_at` is the first non-machine open), over the newest RECENT_WINDOW
    messages. Test sends are left out. A bounded read for the Overview; reports come later
    from rollups."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT m.template_id, t.name, m.message_class, count(*),
                   count(m.opened_at), count(m.clicked_at), max(m.sent_at)
            FROM (
                SELECT id, template_id, message_class, opened_at, clicked_at, sent_at, state, source
                FROM campaigns_message WHERE workspace_id = %(ws)s ORDER BY id DESC LIMIT %(window)s
            ) m
            JOIN campaigns_emailtemplate t ON t.id = m.template_id
            WHERE m.state = %(sent)s AND m.source NOT LIKE %(test)s
            GROUP BY m.template_id, t.name, m.message_class
            ORDER BY max(m.id) DESC
            LIMIT %(limit)s
            """,
            {
                "ws": workspace.pk,
                "window": RECENT_WINDOW,
                "sent": MessageState.SENT,
                "test": MessageSource.prefix(SourceKind.TEST) + "%",
                "limit": limit,
            },
        )
        return [RecentSend(*row) for row in cursor.fetchall()]
