"""The n-th most recent time each contact did each named event (RecentEvent), so that segment
conditions "did X at least N times in the last D days" read one index range instead of
grouping every such event of the workspace.

A contact's rows are always *recomputed* from all its events (the newest RECENT_EVENT_DEPTH of
each name), never incremented: a replayed task, a late event or an identity merge that hands
old events to a contact gives the same rows as if everything had arrived in order.

The table is used for a workspace only once it is complete: `recent_events_rebuild` (the
management command of the same name) marks the build as started, fills the rows contact range
by contact range, then marks it built; from the start mark on, the ingestion pipeline keeps
the rows of every contact whose events it stores or merges, so nothing ingested during the
build is missed. Events written by any other path (a bulk load) need a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audiences.behaviour import RecentEventsBuilt

# Conditions counting up to this many events read the table; larger counts read the events.
RECENT_EVENT_DEPTH = 5

_ROWS_SQL = """
    SELECT workspace_id, contact_id, name, nth, occurred_at
    FROM (
        SELECT e.workspace_id, e.contact_id, e.name, e.occurred_at,
               row_number() OVER (PARTITION BY e.contact_id, e.name ORDER BY e.occurred_at DESC, e.id DESC) AS nth
        FROM audiences_event e
        WHERE e.workspace_id = %(ws)s AND e.name <> '' AND {contacts}
    ) ranked
    WHERE nth <= %(depth)s
"""


def recent_events_kept(*, workspace_id: int) -> bool:
    """Whether the pipeline keeps the workspace's rows (a build has started or finished)."""
    return RecentEventsBuilt.objects.filter(workspace_id=workspace_id).exists()


def recent_events_built(*, workspace_id: int) -> bool:
    """Whether the rows are complete, so segment conditions may read them."""
    return RecentEventsBuilt.objects.filter(workspace_id=workspace_id, built_at__isnull=False).exists()


def recent_events_refresh(*, workspace_id: int, contact_ids: Collection[int]) -> None:
    """Recompute the rows of these contacts of the workspace from their events (set-based:
    one DELETE, one INSERT … SELECT over the (contact, occurred_at) index)."""
    ids = sorted({int(contact_id) for contact_id in contact_ids})
    if not ids:
        return
    params: dict[str, Any] = {"ws": workspace_id, "ids": ids, "depth": RECENT_EVENT_DEPTH}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM audiences_recentevent WHERE workspace_id = %(ws)s AND contact_id = ANY(%(ids)s)", params
        )
        cursor.execute(
            "INSERT INTO audiences_recentevent (workspace_id, contact_id, name, nth, occurred_at) "
            + _ROWS_SQL.format(contacts="e.contact_id = ANY(%(ids)s)")
            # A concurrent refresh of the same contact committed first: the newer read wins.
            + " ON CONFLICT (contact_id, name, nth) DO UPDATE SET occurred_at = EXCLUDED.occurred_at",
            params,
        )


def recent_events_rebuild(
    *, workspace_id: int, batch_size: int = 20_000, progress: Callable[[int], None] | None = None
) -> int:
    """Build the workspace's rows from all its events, `batch_size` contacts per statement (in
    id ranges, so each reads one range of the (contact, occurred_at) index); then mark them
    built. Returns how many rows were written."""
    now = timezone.now()
    RecentEventsBuilt.objects.update_or_create(workspace_id=workspace_id, defaults={"started_at": now})
    written, last_id = 0, 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT max(id), count(*) FROM (SELECT id FROM audiences_contact WHERE workspace_id = %s AND id > %s "
                "ORDER BY id LIMIT %s) batch",
                [workspace_id, last_id, batch_size],
            )
            high, count = cursor.fetchone()
            if not count:
                break
            params = {"ws": workspace_id, "low": last_id, "high": high, "depth": RECENT_EVENT_DEPTH}
            with transaction.atomic():
                cursor.execute(
                    "DELETE FROM audiences_recentevent WHERE workspace_id = %(ws)s "
                    "AND contact_id > %(low)s AND contact_id <= %(high)s",
                    params,
                )
                cursor.execute(
                    "INSERT INTO audiences_recentevent (workspace_id, contact_id, name, nth, occurred_at) "
                    + _ROWS_SQL.format(contacts="e.contact_id > %(low)s AND e.contact_id <= %(high)s")
                    # Rows the pipeline wrote meanwhile were read later than this statement's
                    # snapshot: they win.
                    + " ON CONFLICT (contact_id, name, nth) DO NOTHING",
                    params,
                )
                written += cursor.rowcount
            last_id = high
            if progress:
                progress(written)
    RecentEventsBuilt.objects.filter(workspace_id=workspace_id).update(built_at=timezone.now())
    return written
