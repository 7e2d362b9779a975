"""The n-th most recent time each contact did each named event (RecentEvent), so that segment
conditions "did X at least N times in the last D days" read one index range instead of
grouping every such event of the workspace.

A contact's rows are always *recomputed* from all its events (the newest RECENT_EVENT_DEPTH of
each name), never incremented: a replayed task, a late event or an identity merge that hands
old events to a contact gives the same rows as if everything had arrived in order.

The table is used for a workspace only once it is complete: `recent_events_rebuild` (the
management command of the same name) marks the build as started, fills the rows event name by
event name, then marks it built; from the start mark on, the ingestion pipeline keeps
the rows of every contact whose events it stores or merges, so nothing ingested during the
build is missed. Events written by any other path (a bulk load) need a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audiences.models import RecentEventsBuilt

# Conditions counting up to this many events read the table; larger counts read the events.
RECENT_EVENT_DEPTH = 5

_ROWS_SQL = """
    SELECT workspace_id, contact_id, name, nth, occurred_at
    FROM (
        SELECT e.workspace_id, e.contact_id, e.name, e.occurred_at,
               -- Ties in time may take either place: the times kept are the same.
               row_number() OVER (PARTITION BY e.contact_id, e.name ORDER BY e.occurred_at DESC) AS nth
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


def recent_events_rebuild(*, workspace_id: int, progress: Callable[[str, int], None] | None = None) -> int:
    """Build the workspace's rows from all its events, one event name per statement (an
    index range of (workspace, name, occurred_at), sorted by contact): batches of contacts
    would read a heap page per event, as events lie in time order. Then mark them built.
    Returns how many rows were written."""
    RecentEventsBuilt.objects.update_or_create(workspace_id=workspace_id, defaults={"started_at": timezone.now()})
    written = 0
    with connection.cursor() as cursor:
        # The distinct names by skipping through the index, not by reading every event.
        cursor.execute(
            """
            WITH RECURSIVE names (name) AS (
                SELECT min(name) FROM audiences_event WHERE workspace_id = %(ws)s AND name > ''
                UNION ALL
                SELECT (SELECT min(name) FROM audiences_event WHERE workspace_id = %(ws)s AND name > names.name)
                FROM names WHERE names.name IS NOT NULL
            )
            SELECT name FROM names WHERE name IS NOT NULL
            """,
            {"ws": workspace_id},
        )
        names = [row[0] for row in cursor.fetchall()]
        for name in names:
            params = {"ws": workspace_id, "name": name, "depth": RECENT_EVENT_DEPTH}
            with transaction.atomic():
                cursor.execute(
                    "DELETE FROM audiences_recentevent WHERE workspace_id = %(ws)s AND name = %(name)s", params
                )
                cursor.execute(
                    "INSERT INTO audiences_recentevent (workspace_id, contact_id, name, nth, occurred_at) "
                    + _ROWS_SQL.format(contacts="e.name = %(name)s AND e.contact_id IS NOT NULL")
                    # Rows the pipeline wrote meanwhile were read later than this statement's
                    # snapshot: they win.
                    + " ON CONFLICT (contact_id, name, nth) DO NOTHING",
                    params,
                )
                written += cursor.rowcount
            if progress:
                progress(name, written)
    RecentEventsBuilt.objects.filter(workspace_id=workspace_id).update(built_at=timezone.now())
    return written
