"""Claiming due messages for a worker, and giving back what it did not send: the claim SQL
(`FOR UPDATE SKIP LOCKED`, committed at once) and the lease that recovery reads (a row claimed
longer than the lease belongs to a dead worker)."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from esp import clock

# Recovery puts a row claimed longer than this back to the queue, taking it for a dead
# worker's; a live worker gives back what it has not sent long before (LEASE / 2).
LEASE = dt.timedelta(minutes=2)
# Longer than any provider call may take (SMTP timeouts are 30 s): a row in `sending` for
# this long belongs to a dead worker.
SENDING_TIMEOUT = dt.timedelta(minutes=5)


def message_claim_batch(*, limit: int, token: dt.datetime, now: dt.datetime | None = None) -> list[int]:
    """Take up to `limit` messages due at `now` (the engine's clock unless given), oldest
    first and the most important first among rows due at the same instant, for this worker:
    committed at once, so other workers skip them (and skip rows locked by a concurrent
    claim). `token` becomes the rows' claimed_at and identifies this claim in every later
    write; it stays real time (recovery measures leases by it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_message SET state = 'claimed', claimed_at = %(token)s
            WHERE id IN (
                SELECT id FROM campaigns_message
                WHERE state = 'queued' AND due_at <= %(now)s
                -- The order of the message_due index: read in order, never sorted.
                ORDER BY due_at, priority DESC, id LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            {"token": token, "now": now if now is not None else clock.now(), "limit": limit},
        )
        return [row[0] for row in cursor.fetchall()]


def _claim_token() -> dt.datetime:
    # claimed_at doubles as the claim's identity: a row recovery took back (and maybe another
    # worker claimed since) no longer matches, so this worker's later writes skip it.
    return timezone.now()


def _release(ids: list[int], token: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_message SET state = 'queued', claimed_at = NULL
            WHERE id = ANY(%s) AND state = 'claimed' AND claimed_at = %s
            """,
            [ids, token],
        )
