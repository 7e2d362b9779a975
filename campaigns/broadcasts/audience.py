"""Who a broadcast reaches: its lists, segments and tags in, others out, then only contacts who
may get marketing mail — subscribed to a list (to one of the broadcast's lists when it names
lists), with an address, not on the suppression list.

One lazy query over the contacts; the live count while composing and the snapshot when sending
read the same one, so the number shown is the number sent (until the audience changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Count, Exists, Func, OuterRef, Q, QuerySet
from django.db.models.functions import Lower, Trim

from audiences.models import Contact, Segment, Subscription, SubscriptionStatus, Suppression
from audiences.segments.compiler import segment_queryset
from campaigns.broadcast_models import Broadcast
from esp.models import Workspace

NOTHING = Q(pk__in=[])


class EmailHash(Func):
    """audiences.models.email_hash in SQL: the hex SHA-256 of the trimmed, lower-cased address,
    as the suppression list keys it (UTF-8 bytes, not a cast that reads backslashes)."""

    template = "encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')"


@dataclass(frozen=True)
class AudienceCount:
    matching: int  # in the audience's lists, segments and tags
    without_consent: int  # … but subscribed to none of the lists that count
    suppressed: int  # … subscribed, but on the suppression list or without an address
    recipients: int  # who the snapshot would make a message for


def _segments_q(workspace: Workspace, ids: list[int]) -> list[Q]:
    parts = []
    for segment in Segment.objects.in_workspace(workspace).filter(pk__in=ids):
        parts.append(Q(pk__in=segment_queryset(workspace=workspace, rules=segment.rules).values("pk")))
    return parts


def _members_q(workspace: Workspace, list_ids: list[int]) -> Q:
    return Q(
        pk__in=Subscription.objects.in_workspace(workspace)
        .filter(mailing_list_id__in=list_ids, status=SubscriptionStatus.SUBSCRIBED)
        .values("contact_id")
    )


def _any_of(workspace: Workspace, lists: list[int], segments: list[int], tags: list[str]) -> Q | None:
    parts: list[Q] = []
    if lists:
        parts.append(_members_q(workspace, lists))
    parts += _segments_q(workspace, segments)
    if tags:
        parts.append(Q(tags__overlap=tags))
    return reduce(or_, parts) if parts else None


def matching(workspace: Workspace, broadcast: Broadcast) -> QuerySet[Contact]:
    """Contacts in an "include" and in no "exclude" (consent not looked at yet)."""
    contacts = Contact.objects.filter(workspace_id=workspace.pk)
    include = _any_of(workspace, broadcast.include_lists, broadcast.include_segments, broadcast.include_tags)
    if include is None:
        return contacts.filter(NOTHING)
    exclude = _any_of(workspace, broadcast.exclude_lists, broadcast.exclude_segments, broadcast.exclude_tags)
    contacts = contacts.filter(include)
    return contacts.exclude(exclude) if exclude is not None else contacts


def _annotated(workspace: Workspace, broadcast: Broadcast) -> QuerySet[Contact]:
    consent_lists = Subscription.objects.filter(
        workspace_id=workspace.pk, contact_id=OuterRef("pk"), status=SubscriptionStatus.SUBSCRIBED
    )
    if broadcast.include_lists:
        # Sent to lists: only their members' consent counts (a segment's members joined another).
        consent_lists = consent_lists.filter(mailing_list_id__in=broadcast.include_lists)
    suppressed = Suppression.objects.filter(
        workspace_id=workspace.pk, email_hash=EmailHash(Lower(Trim(OuterRef("email"))))
    )
    return matching(workspace, broadcast).annotate(consent=Exists(consent_lists), suppressed=Exists(suppressed))


def recipients(workspace: Workspace, broadcast: Broadcast) -> QuerySet[Contact]:
    """Who the snapshot makes a message for."""
    sendable = Q(consent=True, suppressed=False)  # the annotations of _annotated
    return _annotated(workspace, broadcast).filter(sendable).exclude(email="")


def audience_count(workspace: Workspace, broadcast: Broadcast) -> AudienceCount:
    """The four numbers of the composer's live count, in one query."""
    sendable = Q(consent=True, suppressed=False) & ~Q(email="")
    figures: dict[str, Any] = _annotated(workspace, broadcast).aggregate(
        matching=Count("pk"),
        consented=Count("pk", filter=Q(consent=True)),
        recipients=Count("pk", filter=sendable),
    )
    matched, consented, sendable_count = figures["matching"], figures["consented"], figures["recipients"]
    return AudienceCount(
        matching=matched,
        without_consent=matched - consented,
        suppressed=consented - sendable_count,
        recipients=sendable_count,
    )


# The tables the audience query reads. Right after a big import (before autovacuum has looked),
# PostgreSQL plans them as nearly empty and checks each contact's consent by scanning the
# subscriptions: the snapshot then grows with the square of the audience (measured by
# tests/campaigns/test_broadcast_chaos.py: 5,000 recipients took 8 s).
AUDIENCE_TABLES = ("audiences_contact", "audiences_subscription", "audiences_suppression")


def refresh_statistics() -> list[str]:
    """ANALYZE the audience's tables whose statistics are missing or stale (over a fifth of
    their rows changed since); a sample of each, well under a second. The tables analysed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT relname FROM pg_stat_user_tables
            WHERE relname = ANY(%s)
              AND (COALESCE(last_analyze, last_autoanalyze) IS NULL
                   OR n_mod_since_analyze > 0.2 * GREATEST(n_live_tup, 1000))
            """,
            [list(AUDIENCE_TABLES)],
        )
        stale = [row[0] for row in cursor.fetchall()]
        for table in stale:
            cursor.execute(f"ANALYZE {table}")
    return stale
