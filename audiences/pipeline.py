"""What happens after events are stored (audiences.ingest): the identity merge, purchase facts
and segment membership of the contacts concerned. One PendingEvents row per ingest request is
the unit of work; it is deleted in the transaction that did the work, so a crash, a failed
step or a lost task leaves it for the sweeper, and a duplicate task finds nothing to do.

The identity merge: an identify or alias links ids (an anonymousId, a previousId, a userId) to
a contact. Events stored earlier under those ids, before anyone knew whose they were (browsing
before sign-up), are given that contact here — set-based, through the two partial indexes of
Event over unlinked rows. A merged identify or alias can name further ids (an identify sent
anonymously under another device's id, say), so the merge repeats a few rounds until no new id
turns up.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from audiences import hooks
from audiences.models import EventType, PendingEvents
from esp.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

# A row this old was not processed: its task was never sent (broker down) or its worker died.
SWEEP_AFTER = timedelta(minutes=2)
# Each further re-send waits twice as long (2, 4, 8, … minutes, at most 128); after this many
# the row stays for a person to look at (it is logged every sweep).
MAX_ATTEMPTS = 10
SWEEP_BATCH = 500
MERGE_ROUNDS = 5
# A task takes the other rows of its workspace waiting then (their tasks are queued behind it),
# up to this many events: under load one task per batch of requests instead of one per
# request, whose fixed cost (facts, segments, the hook's task) would otherwise make the queue
# grow faster than it is worked off. Their own tasks then find nothing to do.
MERGE_EVENTS = 2000


def pending_events_process(*, pending_id: int) -> None:
    """Claim the row (SKIP LOCKED: a second task for it returns at once), merge identities,
    refresh the facts and segments of every contact concerned, fire "events stored", delete
    the row."""
    from audiences.facts import purchase_facts_refresh
    from audiences.recent_events import recent_events_kept, recent_events_refresh
    from audiences.segments.membership import segments_refresh_contacts

    with transaction.atomic():
        pending = PendingEvents.objects.select_for_update(skip_locked=True).filter(pk=pending_id).first()
        if pending is None:
            return  # done already, or being done by another worker
        rows = [pending, *_waiting_behind(pending)]
        event_ids = sorted({event_id for row in rows for event_id in row.event_ids})
        contact_ids = identities_merge(workspace_id=pending.workspace_id, event_ids=event_ids)
        # Facts and segments are audiences' own and run in this transaction, so a crash repeats
        # them with the row; the layers above hear of the events through the hook, after commit.
        if contact_ids:
            purchase_facts_refresh(workspace_id=pending.workspace_id, contact_ids=contact_ids)
            # Before the segments: their conditions may read these rows.
            if recent_events_kept(workspace_id=pending.workspace_id):
                recent_events_refresh(workspace_id=pending.workspace_id, contact_ids=contact_ids)
            segments_refresh_contacts(workspace_id=pending.workspace_id, contact_ids=contact_ids)
        hooks.events_stored.fire(
            hooks.EventsStored(pending.workspace_id, hooks.ids(event_ids), hooks.ids(list(contact_ids)))
        )
        PendingEvents.objects.filter(pk__in=[row.pk for row in rows]).delete()


def _waiting_behind(pending: PendingEvents) -> list[PendingEvents]:
    """Rows of the same workspace waiting to be processed, oldest first, that no other worker
    holds, as many as fit in MERGE_EVENTS with the claimed one's events."""
    room = MERGE_EVENTS - len(pending.event_ids)
    taken: list[PendingEvents] = []
    if room <= 0:
        return taken
    candidates = (
        PendingEvents.objects.select_for_update(skip_locked=True)
        # A row that failed before may fail again: it is not let to take good rows with it.
        .filter(workspace_id=pending.workspace_id, attempts=0)
        .exclude(pk=pending.pk)
        .order_by("id")[:50]
    )
    for row in candidates:
        if len(row.event_ids) > room:
            break
        taken.append(row)
        room -= len(row.event_ids)
    return taken


def identities_merge(*, workspace_id: int, event_ids: list[int]) -> set[int]:
    """Link earlier unlinked events to the contacts these events identified; return every
    contact whose events changed (those of `event_ids` and those merged)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT contact_id, type, user_id, anonymous_id, coalesce(properties->>'previousId', '')
            FROM audiences_event WHERE workspace_id = (SELECT %s::bigint) AND id = ANY(%s)
            """,
            [workspace_id, event_ids],
        )
        rows = cursor.fetchall()
        touched = {row[0] for row in rows if row[0] is not None}
        seen: set[str] = set()
        for _round in range(MERGE_ROUNDS):
            links = _links(rows, seen)
            if not links:
                break
            seen |= set(links)
            _aliases_add(cursor, workspace_id, links)
            targets = _targets(cursor, workspace_id, list(links))
            if not targets:
                break
            rows = _merge(cursor, workspace_id, targets)
            touched |= {row[0] for row in rows}
    return touched


def _links(rows: list[tuple[int | None, str, str, str, str]], seen: set[str]) -> dict[str, tuple[int, bool]]:
    """The ids the linked identify/alias events among `rows` tie to their contact, with whether
    each may become an alias (a userId of an identify is the contact's external_id already, or
    another contact's: never an alias)."""
    links: dict[str, tuple[int, bool]] = {}
    for contact_id, kind, user_id, anonymous_id, previous_id in rows:
        if contact_id is None:
            continue
        if kind == EventType.IDENTIFY:
            candidates = ((anonymous_id, True), (user_id, False))
        elif kind == EventType.ALIAS:
            candidates = ((previous_id, True), (user_id, True))
        else:
            continue
        for ident, aliasable in candidates:
            if ident and ident not in seen and ident not in links:
                links[ident] = (contact_id, aliasable)
    return links


def _aliases_add(cursor: CursorWrapper, workspace_id: int, links: dict[str, tuple[int, bool]]) -> None:
    """Record the ids as aliases; an id that already belongs to someone (as an alias, or as a
    contact's external_id) keeps its owner."""
    aliases = [(ident, contact_id) for ident, (contact_id, aliasable) in links.items() if aliasable]
    if not aliases:
        return
    cursor.execute(
        """
        INSERT INTO audiences_contactalias (workspace_id, contact_id, alias, created_at)
        SELECT %(ws)s, l.contact_id, l.alias, %(now)s
        FROM unnest(%(aliases)s::text[], %(contacts)s::bigint[]) AS l(alias, contact_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM audiences_contact c
            WHERE c.workspace_id = (SELECT %(ws)s::bigint) AND c.external_id = l.alias AND c.external_id <> ''
        )
        ON CONFLICT (workspace_id, alias) DO NOTHING
        """,
        {
            "ws": workspace_id,
            "now": timezone.now(),
            "aliases": [alias for alias, _ in aliases],
            "contacts": [contact_id for _, contact_id in aliases],
        },
    )


def _targets(cursor: CursorWrapper, workspace_id: int, idents: list[str]) -> list[tuple[str, int]]:
    """Whose each id is now, by the tables (a contact's external_id wins over an alias): the
    merge follows the identity graph as stored, not what one message claimed. `(SELECT ws)`:
    see audiences.ingest.identity.read_known."""
    cursor.execute(
        """
        SELECT i.ident, coalesce(c.id, a.contact_id)
        FROM unnest(%(idents)s::text[]) AS i(ident)
        LEFT JOIN audiences_contact c
            ON c.workspace_id = (SELECT %(ws)s::bigint) AND c.external_id = i.ident AND c.external_id <> ''
        LEFT JOIN audiences_contactalias a ON a.workspace_id = (SELECT %(ws)s::bigint) AND a.alias = i.ident
        WHERE c.id IS NOT NULL OR a.contact_id IS NOT NULL
        """,
        {"ws": workspace_id, "idents": idents},
    )
    return list(cursor.fetchall())


def _merge(
    cursor: CursorWrapper, workspace_id: int, targets: list[tuple[str, int]]
) -> list[tuple[int, str, str, str, str]]:
    """Give the unlinked events of these ids their contact: one UPDATE per id column, each over
    its partial index. Returns the merged rows (contact, type, ids) for the next round."""
    params: dict[str, Any] = {
        "ws": workspace_id,
        "idents": [ident for ident, _ in targets],
        "contacts": [contact_id for _, contact_id in targets],
    }
    merged: list[tuple[int, str, str, str, str]] = []
    for column in ("anonymous_id", "user_id"):
        # One probe of the partial index per id: LATERAL with OFFSET 0 keeps the planner from
        # flattening it into a scan of every unlinked event of the workspace, which it chose
        # while the table's statistics knew nothing of the workspace (29 ms against 0.25 ms for
        # two ids among 9,000 unlinked events; the gap grows with the workspace).
        cursor.execute(
            f"""
            UPDATE audiences_event e SET contact_id = m.contact_id
            FROM (
                SELECT x.id, l.contact_id
                FROM unnest(%(idents)s::text[], %(contacts)s::bigint[]) AS l(ident, contact_id)
                CROSS JOIN LATERAL (
                    SELECT id FROM audiences_event
                    WHERE workspace_id = %(ws)s AND contact_id IS NULL AND {column} <> '' AND {column} = l.ident
                    OFFSET 0
                ) x
            ) m
            WHERE e.id = m.id AND e.contact_id IS NULL
            RETURNING e.contact_id, e.type, e.user_id, e.anonymous_id, coalesce(e.properties->>'previousId', '')
            """,  # noqa: S608 — the column name is one of two constants
            params,
        )
        merged += cursor.fetchall()
    return merged


def pending_events_sweep(*, now: datetime | None = None) -> list[int]:
    """Send again the processing of rows left behind, oldest first, with an exponential
    backoff per row; counts each re-send in `attempts`. Returns the ids sent."""
    from audiences.tasks import process_events

    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE audiences_pendingevents SET attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM audiences_pendingevents
                WHERE created_at < %(due)s AND attempts < %(max)s
                  AND created_at < %(now)s - make_interval(secs => %(after)s * power(2, least(attempts, 6)))
                ORDER BY created_at LIMIT %(batch)s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            {
                "due": now - SWEEP_AFTER,
                "now": now,
                "max": MAX_ATTEMPTS,
                "after": SWEEP_AFTER.total_seconds(),
                "batch": SWEEP_BATCH,
            },
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        for pending_id in ids:
            enqueue_after_commit(process_events, pending_id)
        cursor.execute("SELECT count(*) FROM audiences_pendingevents WHERE attempts >= %s", [MAX_ATTEMPTS])
        (stuck,) = cursor.fetchone()
    if stuck:
        logger.error("%d pending event batches failed %d times and are no longer retried", stuck, MAX_ATTEMPTS)
    return ids
