"""Reads of broadcasts: the list with each one's figures, and one broadcast's progress."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import QuerySet

from campaigns.broadcast_models import Broadcast
from campaigns.models import MessageSource
from esp.models import Workspace


@dataclass
class Progress:
    """A broadcast's messages by what became of them."""

    queued: int = 0  # waiting for their time (or held by a pause)
    sending: int = 0  # taken by a worker
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    in_doubt: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.queued + self.sending + self.sent + self.skipped + self.failed + self.in_doubt

    @property
    def settled(self) -> int:
        return self.total - self.queued - self.sending

    def percent(self, part: int) -> int:
        return round(100 * part / self.total) if self.total else 0

    def rate(self, part: int) -> float | None:
        """A share of the messages sent, in %."""
        return round(100 * part / self.sent, 1) if self.sent else None


def broadcasts(*, workspace: Workspace) -> QuerySet[Broadcast]:
    return Broadcast.objects.in_workspace(workspace).select_related("template")


def broadcast_get(*, workspace: Workspace, broadcast_id: int) -> Broadcast:
    return (
        Broadcast.objects.in_workspace(workspace).select_related("template", "sender", "provider").get(pk=broadcast_id)
    )


def progress(*, workspace: Workspace, broadcast_ids: list[int]) -> dict[int, Progress]:
    """Progress of several broadcasts in one grouped scan of their messages (the unique index
    on (workspace, source, contact) reads each broadcast's rows)."""
    found = {pk: Progress() for pk in broadcast_ids}
    if not broadcast_ids:
        return found
    sources = [str(MessageSource.broadcast(pk)) for pk in broadcast_ids]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT source, state, reason, count(*), count(delivered_at), count(opened_at), count(clicked_at),
                   count(bounced_at), count(complained_at), count(unsubscribed_at)
            FROM campaigns_message
            WHERE workspace_id = %s AND source = ANY(%s)
            GROUP BY source, state, reason
            """,
            [workspace.pk, sources],
        )
        for source, state, reason, n, delivered, opened, clicked, bounced, complained, unsub in cursor.fetchall():
            row = found[int(MessageSource.parse(source).key)]
            if state in ("claimed", "sending"):
                row.sending += n
            elif state == "skipped":
                row.skipped += n
                row.skipped_by_reason[reason] = row.skipped_by_reason.get(reason, 0) + n
            elif state == "suppressed":
                row.skipped += n
                row.skipped_by_reason["suppressed"] = row.skipped_by_reason.get("suppressed", 0) + n
            elif hasattr(row, state):
                setattr(row, state, getattr(row, state) + n)
            row.delivered += delivered
            row.opened += opened
            row.clicked += clicked
            row.bounced += bounced
            row.complained += complained
            row.unsubscribed += unsub
    return found
