"""Reads of the event store: a contact's timeline, the event explorer and the events API.

Every read is newest first on (occurred_at, id) with keyset pagination, and every query is
shaped to run on one of Event's indexes (audiences/models/events.py), because the table holds tens
of millions of rows per workspace and each extra index costs every ingested event:

- by contact: (contact, -occurred_at);
- by name: (workspace, name, occurred_at);
- neither: there is no (workspace, occurred_at) index. The distinct names are found by a loose
  index scan of (workspace, name, …) (one index probe per name instead of reading every row),
  each name's newest rows past the cursor are read from the same index, and the pages are
  merged. The work grows with the number of distinct names — tens to a few hundred in a
  tracking plan — not with the number of events.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from audiences.models import Event
from esp.input import parse_id
from esp.models import Workspace

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# The explorer's name picker and the per-name counts stop after this many distinct names.
NAMES_LIMIT = 300
# Per-name counts are exact up to this many rows, then shown as "10,000+": counting is bounded
# work (an index-only range scan per name) whatever the window.
COUNT_CAP = 10_000
# A contact's own events, grouped by name, are counted over at most this many rows.
CONTACT_COUNT_CAP = 100_000
# These calls carry no name (behaviour.Event.name), so they all sit under name "" in the name index.
NAMELESS_TYPES = frozenset({"identify", "alias", "group"})
# How long a type filter without a name or contact may scan (see events_page).
TYPE_SCAN_TIMEOUT_MS = 3000
QUERY_CANCELED = "57014"  # PostgreSQL's query_canceled, raised by statement_timeout


@dataclass(frozen=True)
class EventCursor:
    """The position after the last row of a page: its (occurred_at, id). Opaque to clients."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.occurred_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> EventCursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ValueError("not a cursor") from error
        stamp, _sep, event_id = raw.partition("|")
        occurred_at = parse_datetime(stamp)
        if occurred_at is None or occurred_at.tzinfo is None or parse_id(event_id) is None:
            raise ValueError("not a cursor")
        return cls(occurred_at=occurred_at, id=int(event_id))

    @classmethod
    def of(cls, event: Event) -> EventCursor:
        return cls(occurred_at=event.occurred_at, id=event.pk)


@dataclass(frozen=True)
class EventFilters:
    name: str = ""
    type: str = ""
    contact_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next_cursor: EventCursor | None


@dataclass(frozen=True)
class NameCount:
    name: str
    count: int
    capped: bool  # the count stopped at the cap: "at least"


def _filtered(workspace: Workspace, filters: EventFilters) -> QuerySet[Event]:
    queryset = Event.objects.in_workspace(workspace)
    if filters.contact_id is not None:
        queryset = queryset.filter(contact_id=filters.contact_id)
    if filters.name:
        queryset = queryset.filter(name=filters.name)
    if filters.type:
        queryset = queryset.filter(type=filters.type)
    if filters.since is not None:
        queryset = queryset.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(occurred_at__lt=filters.until)
    return queryset


def _after(queryset: QuerySet[Event], cursor: EventCursor) -> QuerySet[Event]:
    # The row comparison (occurred_at, id) < (t, i) spelled so that `occurred_at <= t` is an
    # index condition of (…, occurred_at) indexes, which hold no id.
    return queryset.filter(
        Q(occurred_at__lt=cursor.occurred_at) | Q(occurred_at=cursor.occurred_at, id__lt=cursor.id),
        occurred_at__lte=cursor.occurred_at,
    )


def _page(rows: list[Event], limit: int) -> EventPage:
    if len(rows) > limit:
        return EventPage(events=rows[:limit], next_cursor=EventCursor.of(rows[limit - 1]))
    return EventPage(events=rows, next_cursor=None)


class EventQueryTooBroad(Exception):
    """A type filter without a name or contact ran past TYPE_SCAN_TIMEOUT_MS."""


def events_page(
    *, workspace: Workspace, filters: EventFilters, cursor: EventCursor | None = None, limit: int = PAGE_SIZE
) -> EventPage:
    """One page of the workspace's events matching the filters, newest first, with the cursor
    of the next (older) page. Each event comes with its contact (email for links).

    The event type is in no index: filtered by type alone, a name that has no event of that
    type is read to its end. Such a query gets TYPE_SCAN_TIMEOUT_MS and then raises
    EventQueryTooBroad, so that a page asks for a name, a contact or a shorter window instead
    of holding a connection for seconds."""
    if filters.type and not filters.name and filters.contact_id is None:
        with transaction.atomic(), connection.cursor() as db:
            db.execute("SHOW statement_timeout")
            previous = db.fetchone()[0]
            db.execute("SET LOCAL statement_timeout = %s", [TYPE_SCAN_TIMEOUT_MS])
            try:
                with transaction.atomic():
                    page = _events_page(workspace, filters, cursor, limit)
            except OperationalError as error:
                if getattr(error.__cause__, "pgcode", None) != QUERY_CANCELED:
                    raise
                raise EventQueryTooBroad from error
            finally:
                # SET LOCAL would otherwise last until the end of an enclosing transaction.
                db.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
        return page
    return _events_page(workspace, filters, cursor, limit)


def _events_page(workspace: Workspace, filters: EventFilters, cursor: EventCursor | None, limit: int) -> EventPage:
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if filters.contact_id is None and not filters.name and filters.type not in NAMELESS_TYPES:
        ids = _merged_page_ids(workspace, filters, cursor, limit + 1)
        by_id = Event.objects.in_workspace(workspace).filter(id__in=ids).select_related("contact").in_bulk()
        return _page([by_id[i] for i in ids if i in by_id], limit)
    queryset = _filtered(workspace, filters)
    if filters.contact_id is None and not filters.name:
        queryset = queryset.filter(name="")  # the nameless types: one range of the name index
    if cursor is not None:
        queryset = _after(queryset, cursor)
    rows = list(queryset.select_related("contact").order_by("-occurred_at", "-id")[: limit + 1])
    return _page(rows, limit)


def contact_timeline(
    *, workspace: Workspace, contact_id: int, cursor: EventCursor | None = None, limit: int = PAGE_SIZE
) -> EventPage:
    """A contact's events, newest first by when they happened (a late event lands in its
    place in time, not at the top)."""
    return events_page(workspace=workspace, filters=EventFilters(contact_id=contact_id), cursor=cursor, limit=limit)


def _table() -> str:
    return connection.ops.quote_name(Event._meta.db_table)


def _names_cte(stop_after: int | None) -> str:
    """A loose index scan of (workspace, name, …): each step jumps to the next larger name, so
    finding N names costs N index probes, not a read of every event."""
    table = _table()
    guard = "AND names.n < %(names_limit)s" if stop_after is not None else ""
    return f"""
        WITH RECURSIVE names(name, n) AS (
            (SELECT e.name, 1 FROM {table} e WHERE e.workspace_id = %(workspace)s ORDER BY e.name LIMIT 1)
            UNION ALL
            SELECT (SELECT e.name FROM {table} e
                    WHERE e.workspace_id = %(workspace)s AND e.name > names.name ORDER BY e.name LIMIT 1),
                   names.n + 1
            FROM names WHERE names.name IS NOT NULL {guard}
        )"""  # noqa: S608 — only the table name and fixed fragments are interpolated; values are parameters


def _conditions(filters: EventFilters, cursor: EventCursor | None, params: dict[str, Any]) -> str:
    """SQL conditions on alias `e` for the filters that apply within one name; every value is
    a query parameter."""
    parts = []
    if filters.type:
        parts.append("AND e.type = %(type)s")
        params["type"] = filters.type
    if filters.since is not None:
        parts.append("AND e.occurred_at >= %(since)s")
        params["since"] = filters.since
    if filters.until is not None:
        parts.append("AND e.occurred_at < %(until)s")
        params["until"] = filters.until
    if cursor is not None:
        parts.append("AND e.occurred_at <= %(cursor_at)s AND (e.occurred_at < %(cursor_at)s OR e.id < %(cursor_id)s)")
        params["cursor_at"] = cursor.occurred_at
        params["cursor_id"] = cursor.id
    return " ".join(parts)


def _merged_page_ids(workspace: Workspace, filters: EventFilters, cursor: EventCursor | None, limit: int) -> list[int]:
    """Ids of the newest `limit` events past the cursor over all names: the newest `limit` of
    each name (an index range scan each), merged. The global top `limit` is always among them."""
    params: dict[str, Any] = {"workspace": workspace.pk, "limit": limit}
    conditions = _conditions(filters, cursor, params)
    sql = f"""{_names_cte(None)}
        SELECT page.id FROM names CROSS JOIN LATERAL (
            SELECT e.id, e.occurred_at FROM {_table()} e
            WHERE e.workspace_id = %(workspace)s AND e.name = names.name {conditions}
            ORDER BY e.occurred_at DESC, e.id DESC LIMIT %(limit)s
        ) page
        ORDER BY page.occurred_at DESC, page.id DESC LIMIT %(limit)s"""  # noqa: S608 — see _names_cte
    with connection.cursor() as db:
        db.execute(sql, params)
        return [row[0] for row in db.fetchall()]


def event_names(*, workspace: Workspace, limit: int = NAMES_LIMIT) -> list[str]:
    """The workspace's distinct event names (track events, named pages and screens), sorted;
    at most `limit`. Cheap at any table size: one index probe per name."""
    sql = f"{_names_cte(limit)} SELECT name FROM names WHERE name IS NOT NULL AND name <> '' ORDER BY name"  # noqa: S608
    with connection.cursor() as db:
        db.execute(sql, {"workspace": workspace.pk, "names_limit": limit + 1})
        return [row[0] for row in db.fetchall()][:limit]


def event_name_counts(*, workspace: Workspace, filters: EventFilters) -> list[NameCount]:
    """How many events of each name match the filters (the name filter itself aside, so the
    list shows what else is there), most frequent first. Each count stops at COUNT_CAP.

    Empty for a type filter without a contact: a name that never has that type would have to be
    read to its end to say so, which is not cheap (nameless types have no names to count)."""
    if filters.type and filters.contact_id is None:
        return []
    params: dict[str, Any] = {"workspace": workspace.pk}
    conditions = _conditions(EventFilters(type=filters.type, since=filters.since, until=filters.until), None, params)
    if filters.contact_id is not None:
        # A contact's events come from (contact, occurred_at); group what that range holds.
        params |= {"contact": filters.contact_id, "cap": CONTACT_COUNT_CAP}
        sql = f"""SELECT name, count(*) FROM (
                SELECT e.name FROM {_table()} e
                WHERE e.contact_id = %(contact)s AND e.workspace_id = %(workspace)s {conditions} LIMIT %(cap)s
            ) e WHERE name <> '' GROUP BY name"""  # noqa: S608 — see _names_cte
        cap = CONTACT_COUNT_CAP
    else:
        params |= {"cap": COUNT_CAP + 1, "names_limit": NAMES_LIMIT}
        sql = f"""{_names_cte(NAMES_LIMIT)}
            SELECT names.name, (
                SELECT count(*) FROM (
                    SELECT 1 FROM {_table()} e
                    WHERE e.workspace_id = %(workspace)s AND e.name = names.name {conditions} LIMIT %(cap)s
                ) capped
            ) FROM names WHERE names.name IS NOT NULL AND names.name <> ''"""  # noqa: S608 — see _names_cte
        cap = COUNT_CAP
    with connection.cursor() as db:
        db.execute(sql, params)
        rows = [(name, count) for name, count in db.fetchall() if count]
    counts = [NameCount(name=name, count=min(count, cap), capped=count > cap) for name, count in rows]
    return sorted(counts, key=lambda c: (-c.count, c.name))


# --- presenting an event --------------------------------------------------------------------


def _money(value: Any, currency: Any) -> str:
    if value in (None, ""):
        return ""
    if currency and isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value:.2f}"  # 60.9 EUR reads as 60.90 EUR
    return f"{value} {currency}" if currency else str(value)


def event_summary(event: Event) -> str:
    """A line of the properties that matter for this kind of event: the product, the order and
    its total, the page; the full properties stay one click away."""
    props = event.properties if isinstance(event.properties, dict) else {}
    parts: list[str] = []
    if event.type == "identify":
        parts = [str(props[key]) for key in ("email", "first_name", "firstName", "name") if props.get(key)]
    elif event.type == "alias":
        parts = [str(props.get("previousId", ""))]
    elif event.type in ("page", "screen"):
        where = props.get("path") or props.get("url")
        parts = [str(props.get("title") or ""), str(where or "")]
    else:
        if props.get("name"):
            parts.append(str(props["name"]))
        if props.get("order_id"):  # the shop's own number, the one its staff search for
            parts.append(f"#{props['order_id']}")
        products = props.get("products")
        if isinstance(products, list) and products:
            names = [
                str(p.get("name") or p.get("product_id") or p.get("sku") or "") for p in products if isinstance(p, dict)
            ]
            parts.append(", ".join(n for n in names[:3] if n) + (f" +{len(names) - 3}" if len(names) > 3 else ""))
        total = next(
            (props[key] for key in ("total", "revenue", "value", "price") if props.get(key) not in (None, "")), None
        )
        money = _money(total, props.get("currency"))
        if money:
            parts.append(money)
    return " · ".join(part for part in parts if part)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
