"""Hand-built send logs for the report tests: messages and their events written as the send
road and the webhooks write them, the send loop's settle hook told, and the rollups read."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.db import connection

from analytics.models import DailyRollup
from analytics.rollups import messages_note_settled
from campaigns.models import Message, MessageEvent
from esp.models import Workspace

_keys = itertools.count()


def message(workspace: Workspace, *, source: str = "broadcast:1", sent_at: dt.datetime | None, **extra: Any) -> Message:
    """A message the send loop settled: sent when `sent_at` is given, else skipped."""
    row = Message.objects.create(
        workspace=workspace,
        source=source,
        to_email=f"r{next(_keys)}@example.com",
        state="sent" if sent_at else "skipped",
        sent_at=sent_at,
        claimed_at=sent_at,
        **extra,
    )
    messages_note_settled([row.pk])
    return row


def event(
    message: Message, type: str, at: dt.datetime, *, machine: bool = False, pk: int | None = None
) -> MessageEvent:
    fields: dict[str, Any] = {"pk": pk} if pk is not None else {}
    return MessageEvent.objects.create(
        workspace_id=message.workspace_id,
        message=message,
        contact_id=message.contact_id,
        type=type,
        occurred_at=at,
        event_key=f"k{next(_keys)}",
        is_machine=machine,
        **fields,
    )


def reserve_event_id() -> int:
    """An event id handed out now and committed later (a transaction still open while the
    refresh passes it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('campaigns_messageevent', 'id'))")
        return int(cursor.fetchone()[0])  # type: ignore[index]


def rollup_rows(workspace: Workspace) -> dict[tuple[Any, ...], dict[str, int]]:
    from analytics.kpis import COUNTER_NAMES

    rows: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in DailyRollup.objects.filter(workspace=workspace).values():
        counters = {name: row[name] for name in COUNTER_NAMES}
        if any(counters.values()):
            rows[(row["day"], row["kind"], row["object_id"], row["step_key"], row["template_id"])] = counters
    return rows


def contact(workspace: Workspace, name: str = "") -> Any:
    from audiences.models import Contact

    return Contact.objects.create(workspace=workspace, email=f"{name or 'c'}{next(_keys)}@example.com")


def order(
    workspace: Workspace,
    person: Any,
    at: dt.datetime,
    amount: Any = None,
    *,
    order_id: str | None = None,
    name: str = "Order Completed",
    **properties: Any,
) -> Any:
    """An order (or, with name="Order Refunded", a refund) as the tracking API stores it."""
    from audiences.models import Event

    if amount is not None:
        properties["total"] = amount
    if order_id is not None:
        properties["order_id"] = order_id
    return Event.objects.create(
        workspace=workspace,
        contact=person,
        type="track",
        name=name,
        properties=properties,
        message_id=f"order-{next(_keys)}",
        occurred_at=at,
    )


def money_rows(workspace: Workspace) -> dict[tuple[Any, ...], tuple[int, Any]]:
    """(day, kind, object id, step key, template id) -> (conversions, revenue), rows with money."""
    return {
        (row["day"], row["kind"], row["object_id"], row["step_key"], row["template_id"]): (
            row["conversions"],
            row["revenue"],
        )
        for row in DailyRollup.objects.filter(workspace=workspace).values()
        if row["conversions"] or row["revenue"]
    }
