"""Materialised segment membership: who is in a segment now, and when each contact entered and
left (SegmentMembership rows); each change fires "segment membership changed" (audiences.hooks),
so series can start on "entered" / "left".

A refresh is one set-based statement: the segment's query is run once (a MATERIALIZED CTE),
members no longer matched get exited_at, new matches get a row with entered_at — all in one
snapshot. `segments_refresh_contacts` is the same statement restricted to some contacts, for
every segment of their workspace (after events or contact changes).

Refreshes of one segment are serialised by a transaction-level advisory lock, so a full
refresh and an incremental one never count the same change twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from audiences import hooks
from audiences.models import Contact, Segment
from audiences.segments.compiler import rules_time_relative, segment_queryset
from audiences.segments.registry import RuleContext
from esp.models import Workspace
from esp.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

LOCK_CLASS = 0x5E6  # the advisory-lock namespace of segment refreshes
STALE_AFTER = dt.timedelta(hours=24)  # every segment is fully refreshed at least daily


@dataclass(frozen=True)
class RefreshResult:
    segment_id: int
    entered: int
    exited: int
    member_count: int


def segment_refresh(*, segment_id: int, now: dt.datetime | None = None) -> RefreshResult | None:
    """Bring the whole membership of one segment up to date. None when the segment is gone or
    its rules no longer hold (e.g. a list they name was deleted): the membership is then left
    as it was, rather than everyone "leaving" — the segment's page shows the problem."""
    segment = Segment.objects.select_related("workspace").filter(pk=segment_id).first()
    if segment is None:
        return None
    ctx = RuleContext(segment.workspace, now=now)
    with transaction.atomic():
        _lock(segment.pk)
        try:
            matched = segment_queryset(workspace=segment.workspace, rules=segment.rules, context=ctx)
        except ValidationError as error:
            logger.warning("segment %s not refreshed: its rules are invalid: %s", segment.pk, error.messages)
            return None
        entered, exited, count = _apply(segment, matched, ctx.clock.now, contact_ids=None)
        # refreshed_at is the moment of the snapshot: a save that lands while this runs is
        # later than it, so the segment still shows (and is) due for another refresh.
        Segment.objects.filter(pk=segment.pk).update(member_count=count, refreshed_at=ctx.clock.now)
    return RefreshResult(segment.pk, entered, exited, count)


def segments_refresh_contacts(
    *, workspace_id: int, contact_ids: Collection[int], now: dt.datetime | None = None
) -> list[RefreshResult]:
    """Bring these contacts' memberships of every segment of the workspace up to date (after
    their events, fields, lists or tags changed). Contacts of other workspaces are ignored."""
    ids = sorted({int(i) for i in contact_ids})
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if not ids or workspace is None:
        return []
    # Custom fields and lists are read once for all segments; subqueries narrow to these contacts.
    ctx = RuleContext(workspace, now=now, contact_ids=ids)
    results = []
    # In id order, one transaction each: locks are always taken in the same order.
    for segment in Segment.objects.in_workspace(workspace).order_by("pk"):
        with transaction.atomic():
            _lock(segment.pk)
            try:
                matched = segment_queryset(workspace=workspace, rules=segment.rules, context=ctx)
            except ValidationError:
                continue  # reported by the full refresh and on the segment's page
            entered, exited, _count = _apply(segment, matched.filter(pk__in=ids), ctx.clock.now, contact_ids=ids)
            if entered or exited:
                Segment.objects.filter(pk=segment.pk).update(member_count=F("member_count") + entered - exited)
            results.append(RefreshResult(segment.pk, entered, exited, segment.member_count + entered - exited))
    return results


def segments_refresh_due(*, workspace_id: int | None = None, now: dt.datetime | None = None) -> list[int]:
    """For beat (every 15 minutes): enqueue a full refresh of every segment that needs one —
    never refreshed, changed since, with time-relative rules ("in the last 30 days" moves on
    by itself), or not refreshed for a day. With a workspace: all of its segments."""
    from audiences.tasks import refresh_segment

    now = now or timezone.now()
    segments = Segment.objects.all()
    if workspace_id is not None:
        segments = segments.filter(workspace_id=workspace_id)
    due = []
    for segment in segments.only("pk", "rules", "refreshed_at", "updated_at").order_by("pk").iterator():
        if (
            workspace_id is not None
            or segment.refreshed_at is None
            or segment.refreshed_at < segment.updated_at
            or segment.refreshed_at < now - STALE_AFTER
            or _time_relative(segment.rules)
        ):
            due.append(segment.pk)
            enqueue_after_commit(refresh_segment, segment.pk)
    return due


def _time_relative(rules: dict[str, object]) -> bool:
    try:
        return rules_time_relative(rules)
    except (KeyError, TypeError, AttributeError):
        return True  # not a checked tree: let the refresh find out (and log) what is wrong


def _lock(segment_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, segment_id % 2**31])


def _apply(
    segment: Segment, matched: QuerySet[Contact], now: dt.datetime, *, contact_ids: list[int] | None
) -> tuple[int, int, int]:
    """One statement: (entered, exited, matched count); "segment membership changed" is fired
    with who entered and left. With contact_ids, only those contacts' memberships are
    considered."""
    matched_sql, matched_params = matched.order_by().values("pk").query.sql_with_params()
    only_these = "AND m.contact_id = ANY(%s)" if contact_ids is not None else ""
    # The ids are read back only when someone listens: a full refresh may move millions.
    listened = hooks.segment_membership_changed.has_subscribers
    changed_ids = ", (SELECT array_agg(id) FROM entered), (SELECT array_agg(id) FROM exited)" if listened else ""
    sql = f"""
        WITH matched(id) AS MATERIALIZED ({matched_sql}),
        exited AS (
            UPDATE audiences_segmentmembership m SET exited_at = %s
            WHERE m.segment_id = %s AND m.exited_at IS NULL {only_these}
              AND NOT EXISTS (SELECT 1 FROM matched WHERE matched.id = m.contact_id)
            RETURNING m.contact_id AS id
        ),
        entered AS (
            INSERT INTO audiences_segmentmembership (workspace_id, segment_id, contact_id, entered_at)
            SELECT %s, %s, matched.id, %s FROM matched
            WHERE NOT EXISTS (
                SELECT 1 FROM audiences_segmentmembership m
                WHERE m.segment_id = %s AND m.contact_id = matched.id AND m.exited_at IS NULL)
            ON CONFLICT (segment_id, contact_id) WHERE exited_at IS NULL DO NOTHING
            RETURNING contact_id AS id
        )
        SELECT (SELECT count(*) FROM entered), (SELECT count(*) FROM exited), (SELECT count(*) FROM matched)
            {changed_ids}
    """  # noqa: S608 — the matched subquery is Django-compiled SQL with its own parameters
    params: list[Any] = [*matched_params, now, segment.pk]
    if contact_ids is not None:
        params.append(contact_ids)
    params += [segment.workspace_id, segment.pk, now, segment.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        entered, exited, count, *changed = cursor.fetchone()
    if changed and (entered or exited):
        hooks.segment_membership_changed.fire(
            hooks.SegmentMembershipChanged(
                segment.workspace_id, segment.pk, hooks.ids(changed[0] or []), hooks.ids(changed[1] or [])
            )
        )
    return int(entered), int(exited), int(count)
