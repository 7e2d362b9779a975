"""Reads for segments: the workspace's segments, a rule tree's count and preview, a segment's
current members (keyset-paginated) and its recent enter/exit history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from audiences.events.selectors import event_names as stored_event_names
from audiences.models import Contact, Segment, SegmentMembership
from audiences.segments.compiler import segment_queryset
from audiences.segments.registry import RuleContext
from esp.models import Workspace

PREVIEW_SIZE = 10
MEMBERS_PAGE = 50
HISTORY_SIZE = 50
# The e-commerce events of the Segment spec, offered in the builder before any has arrived.
STANDARD_EVENTS = (
    "Product Viewed", "Product Added", "Product Removed", "Cart Viewed", "Checkout Started",
    "Order Completed", "Order Refunded", "Signed Up",
)  # fmt: skip


def segments(*, workspace: Workspace) -> QuerySet[Segment]:
    return Segment.objects.in_workspace(workspace)


def segment_get(*, workspace: Workspace, segment_id: int) -> Segment:
    return get_object_or_404(segments(workspace=workspace), pk=segment_id)


def refresh_pending(segment: Segment) -> bool:
    """A refresh was asked for (or the rules changed) and has not run since."""
    return segment.refreshed_at is None or segment.refreshed_at < segment.updated_at


def segment_count(*, workspace: Workspace, rules: Any, context: RuleContext | None = None) -> int:
    """How many contacts match the rules now (one COUNT query). Raises ValidationError."""
    return segment_queryset(workspace=workspace, rules=rules, context=context).count()


@dataclass(frozen=True)
class Preview:
    count: int
    contacts: list[Contact]


def segment_preview(
    *, workspace: Workspace, rules: Any, size: int = PREVIEW_SIZE, now: datetime | None = None
) -> Preview:
    """The count and the newest few matching contacts, for the builder while editing."""
    matched_sql, matched_params = (
        segment_queryset(workspace=workspace, rules=rules, now=now).order_by().values("pk").query.sql_with_params()
    )
    # One pass: the matches are computed once (MATERIALIZED), then counted and their newest
    # fetched. Counting and fetching apart evaluated the conditions twice; a window count
    # ordered by id let the planner walk every contact by id, probing each.
    contacts = list(
        Contact.objects.raw(
            f"""
            WITH matched (id) AS MATERIALIZED ({matched_sql})
            SELECT c.id, c.email, c.first_name, c.last_name, (SELECT count(*) FROM matched) AS matched_total
            FROM audiences_contact c
            WHERE c.workspace_id = %s AND c.id IN (SELECT m.id FROM matched m ORDER BY m.id DESC LIMIT %s)
            ORDER BY c.id DESC
            """,  # noqa: S608 — the compiled segment's SQL; every value is a parameter
            [*matched_params, workspace.pk, size],
        )
    )
    count = getattr(contacts[0], "matched_total", 0) if contacts else 0
    return Preview(count, contacts)


def segment_members(*, segment: Segment) -> QuerySet[SegmentMembership]:
    """Current members, newest contact first: keyset-paginate by contact id (the partial
    unique index on (segment, contact) for current members serves it)."""
    return (
        SegmentMembership.objects.filter(segment=segment, workspace_id=segment.workspace_id, exited_at__isnull=True)
        .select_related("contact")
        .order_by("-contact_id")
    )


def segment_members_page(
    *, segment: Segment, before: int | None = None, size: int = MEMBERS_PAGE
) -> tuple[list[SegmentMembership], int | None]:
    """One page of current members and the `before` of the next page (None on the last)."""
    members = segment_members(segment=segment)
    if before is not None:
        members = members.filter(contact_id__lt=before)
    page = list(members[: size + 1])
    return page[:size], (page[size - 1].contact_id if len(page) > size else None)


@dataclass(frozen=True)
class Change:
    contact: Contact
    entered: bool  # False: left
    at: Any


def segment_history(*, segment: Segment, size: int = HISTORY_SIZE) -> list[Change]:
    """The latest entries and exits, newest first (two small index-ordered reads)."""
    memberships = SegmentMembership.objects.filter(segment=segment, workspace_id=segment.workspace_id)
    entries = memberships.select_related("contact").order_by("-id")[:size]
    exits = memberships.filter(exited_at__isnull=False).select_related("contact").order_by("-exited_at")[:size]
    changes = [Change(m.contact, True, m.entered_at) for m in entries]
    changes += [Change(m.contact, False, m.exited_at) for m in exits]
    changes.sort(key=lambda change: change.at, reverse=True)
    return changes[:size]


def event_names(*, workspace: Workspace) -> list[str]:
    """The workspace's event names (the explorer's loose index scan) with the standard
    e-commerce names, for the builder's suggestions."""
    return sorted(set(stored_event_names(workspace=workspace)) | set(STANDARD_EVENTS))
