"""Reads for the audience: contacts, lists, custom fields, suppressions. Every function takes the
workspace and filters by it, so another workspace's rows are never found (a 404, not a 403)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from audiences.filters import ContactFilter, contacts_matching
from audiences.models import (
    Contact,
    CustomField,
    MailingList,
    Segment,
    Subscription,
    SubscriptionStatus,
    Suppression,
    email_hash,
    normalise_email,
)
from esp.models import Workspace

# --- contacts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactFilters:
    """The API's contact filters: the contacts page's filter (search, list and status, tag;
    audiences.filters, so both mean the same) plus exact email and external id."""

    email: str = ""
    external_id: str = ""
    list_id: int | None = None
    status: str = ""
    tag: str = ""
    q: str = ""


@dataclass(frozen=True)
class ContactFootprint:
    """What deleting one contact takes with it (events, subscriptions, consent history) and
    what stays (its messages in the send log, without the person)."""

    events: int
    subscriptions: int
    consent_records: int
    messages: int


def contact_footprint(*, workspace: Workspace, contact: Contact) -> ContactFootprint:
    # Each count walks one contact's rows through an index on contact; the messages are
    # counted through the reverse relation, as the audience layer does not import campaigns.
    contact = get_object_or_404(Contact.objects.in_workspace(workspace), pk=contact.pk)
    return ContactFootprint(
        events=contact.events.count(),
        subscriptions=contact.subscriptions.count(),
        consent_records=contact.consent_records.count(),
        messages=contact.messages.count(),  # type: ignore[attr-defined]
    )


def contacts(*, workspace: Workspace, filters: ContactFilters | None = None) -> QuerySet[Contact]:
    if filters is None:
        return Contact.objects.in_workspace(workspace)
    page_filter = ContactFilter(q=filters.q.strip(), list_id=filters.list_id, status=filters.status, tag=filters.tag)
    queryset = contacts_matching(workspace=workspace, contact_filter=page_filter)
    if filters.email:
        queryset = queryset.filter(email__lower=normalise_email(filters.email).lower())
    if filters.external_id:
        queryset = queryset.filter(external_id=filters.external_id)
    return queryset


def contact_get(*, workspace: Workspace, contact_id: int) -> Contact:
    return get_object_or_404(Contact.objects.in_workspace(workspace), pk=contact_id)


def contact_find(*, workspace: Workspace, email: str = "", external_id: str = "") -> Contact | None:
    """The one contact with this address (compared case-insensitively) and/or external id."""
    if not email and not external_id:
        return None
    return contacts(workspace=workspace, filters=ContactFilters(email=email, external_id=external_id)).first()


# --- lists ----------------------------------------------------------------------------------


def lists(*, workspace: Workspace) -> QuerySet[MailingList]:
    return MailingList.objects.in_workspace(workspace)


def list_get(*, workspace: Workspace, list_id: int) -> MailingList:
    return get_object_or_404(lists(workspace=workspace), pk=list_id)


def public_list_get(*, workspace_slug: str, list_id: int) -> MailingList:
    """A list of the public subscribe page: found by its workspace's slug, and only if public."""
    return get_object_or_404(
        MailingList.objects.select_related("workspace"), pk=list_id, workspace__slug=workspace_slug, is_public=True
    )


def lists_with_counts(*, workspace: Workspace) -> QuerySet[MailingList]:
    """Lists with `pending`, `subscribed` and `unsubscribed` counted in the same query."""
    counts = {
        status: Count("subscriptions", filter=Q(subscriptions__status=status)) for status in SubscriptionStatus.values
    }
    return lists(workspace=workspace).annotate(**counts)


def list_get_with_counts(*, workspace: Workspace, list_id: int) -> MailingList:
    return get_object_or_404(lists_with_counts(workspace=workspace), pk=list_id)


def contact_subscriptions(*, workspace: Workspace, contact: Contact) -> QuerySet[Subscription]:
    return Subscription.objects.in_workspace(workspace).filter(contact=contact).select_related("mailing_list")


def subscription_find(*, workspace: Workspace, mailing_list: MailingList, contact: Contact) -> Subscription | None:
    return Subscription.objects.in_workspace(workspace).filter(mailing_list=mailing_list, contact=contact).first()


# --- custom fields --------------------------------------------------------------------------


def custom_fields(*, workspace: Workspace) -> QuerySet[CustomField]:
    return CustomField.objects.in_workspace(workspace)


def custom_field_get(*, workspace: Workspace, field_id: int) -> CustomField:
    return get_object_or_404(custom_fields(workspace=workspace), pk=field_id)


def custom_field_holders(*, workspace: Workspace, field: CustomField) -> int:
    """How many contacts hold a value for the field (what removing it with its values touches)."""
    return Contact.objects.in_workspace(workspace).filter(attributes__has_key=field.key).count()


# --- suppressions ---------------------------------------------------------------------------


def suppressions(*, workspace: Workspace, email: str = "", reason: str = "") -> QuerySet[Suppression]:
    """By hash, so an erased address (whose email is blanked) is still found by its address."""
    queryset = Suppression.objects.in_workspace(workspace)
    if email:
        queryset = queryset.filter(email_hash=email_hash(email))
    if reason:
        queryset = queryset.filter(reason=reason)
    return queryset


def suppression_get(*, workspace: Workspace, suppression_id: int) -> Suppression:
    return get_object_or_404(suppressions(workspace=workspace), pk=suppression_id)


# --- the Overview page's audience section ---------------------------------------------------

# Counting stops here: the Overview must cost the same on a shop of ten million contacts.
OVERVIEW_CAP = 100_000


@dataclass(frozen=True)
class AudienceOverview:
    contacts: int  # capped at OVERVIEW_CAP (then shown as "100,000+")
    new_last_30_days: int
    new_previous_30_days: int
    capped: bool
    segments: list[Segment]
    segment_count: int
    suppressed: int


def audience_overview(*, workspace: Workspace, now: datetime | None = None) -> AudienceOverview:
    """Audience size and its growth for the Overview, by bounded index scans: contacts are
    counted along (workspace, -id) up to OVERVIEW_CAP, and the newest OVERVIEW_CAP of them (ids
    grow with time) say how many came in the last 30 days and the 30 before."""
    from django.db import connection
    from django.utils import timezone

    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE created_at >= %(last)s),
                   count(*) FILTER (WHERE created_at >= %(previous)s AND created_at < %(last)s)
            FROM (
                SELECT created_at FROM audiences_contact WHERE workspace_id = %(ws)s ORDER BY id DESC LIMIT %(cap)s
            ) newest
            """,
            {"ws": workspace.pk, "cap": OVERVIEW_CAP + 1, "last": now - timedelta(days=30),
             "previous": now - timedelta(days=60)},
        )  # fmt: skip
        total, last, previous = cursor.fetchone() or (0, 0, 0)
    segments = Segment.objects.in_workspace(workspace)
    return AudienceOverview(
        contacts=min(total, OVERVIEW_CAP),
        new_last_30_days=last,
        new_previous_30_days=previous,
        capped=total > OVERVIEW_CAP,
        segments=list(segments.order_by("-member_count", "name")[:5]),
        segment_count=segments.count(),
        suppressed=Suppression.objects.in_workspace(workspace)[:OVERVIEW_CAP].count(),
    )
