"""Read API of the event store: the workspace's events and one contact's events, newest first
by when they happened, keyset-paginated by an opaque cursor on (occurred_at, id).

Events are written by the Segment-compatible tracking endpoints (/v1/track, …); these
endpoints only read, with the read scope of the audience."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from audiences import selectors
from audiences.events.selectors import (
    MAX_PAGE_SIZE,
    EventCursor,
    EventFilters,
    EventPage,
    EventQueryTooBroad,
    events_page,
)
from audiences.models import Event, EventType
from esp.api.views import WorkspaceAPIView
from esp.input import parse_id
from esp.models import ApiScope

DEFAULT_LIMIT = 100


class EventSerializer(serializers.ModelSerializer[Event]):
    contact_id = serializers.IntegerField(
        allow_null=True, help_text="The contact it belongs to; null while only an anonymousId is known."
    )
    properties = serializers.DictField(help_text="track/page/screen properties; identify traits.")
    # `context` comes from the model's JSONField: a declared field of that name would shadow
    # the serializer's own context in type checks.

    class Meta:
        model = Event
        fields = [
            "id", "type", "name", "contact_id", "user_id", "anonymous_id", "message_id", "properties", "context",
            "occurred_at", "received_at",
        ]  # fmt: skip
        read_only_fields = fields


class EventPageSerializer(serializers.Serializer[EventPage]):
    next = serializers.URLField(allow_null=True, help_text="The next (older) page; null on the last page.")
    results = EventSerializer(many=True)


FILTERS = [
    OpenApiParameter("name", str, description="Only events of this name (e.g. `Order Completed`)."),
    OpenApiParameter("type", str, enum=EventType.values, description="Only calls of this type."),
    OpenApiParameter(
        "since", str, description="ISO 8601 date or date-time (UTC when no offset): events that happened at or after."
    ),
    OpenApiParameter("until", str, description="ISO 8601 date or date-time: events that happened before."),
    OpenApiParameter("cursor", str, description="The `next` link's cursor."),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        description=f"Events per page, 1–{MAX_PAGE_SIZE} (default {DEFAULT_LIMIT}).",
    ),
]
CONTACT_FILTER = OpenApiParameter(
    "contact_id", {"type": "integer", "minimum": 1}, description="Only events of this contact."
)
NOT_FOUND = OpenApiResponse(description="No such contact in this workspace.")


def _time(request: Request, key: str) -> datetime | None:
    raw = request.query_params.get(key, "").strip()
    if not raw:
        return None
    try:
        # A "+" of an offset arrives as a space when the client did not encode it.
        value = parse_datetime(raw.replace(" ", "+")) if "T" in raw else None
        if value is None and (day := parse_date(raw)) is not None:
            value = datetime(day.year, day.month, day.day)
    except ValueError:  # well formed but impossible, e.g. month 13
        value = None
    if value is None:
        raise exceptions.ValidationError({key: [_("Expected an ISO 8601 date or date-time.")]})
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _positive_int(request: Request, key: str, default: int | None) -> int | None:
    raw = request.query_params.get(key, "").strip()
    if not raw:
        return default
    if parse_id(raw) is None or int(raw) < 1:
        raise exceptions.ValidationError({key: [_("Expected a positive whole number.")]})
    return int(raw)


class EventsAPIView(WorkspaceAPIView):
    read_scope = ApiScope.CONTACTS_READ

    def filters(self, contact_id: int | None) -> EventFilters:
        params = self.request.query_params
        event_type = params.get("type", "").strip()
        if event_type and event_type not in EventType.values:
            raise exceptions.ValidationError({"type": [_("One of: %s.") % ", ".join(EventType.values)]})
        filters = EventFilters(
            name=params.get("name", ""),
            type=event_type,
            contact_id=contact_id,
            since=_time(self.request, "since"),
            until=_time(self.request, "until"),
        )
        if filters.since and filters.until and filters.since >= filters.until:
            raise exceptions.ValidationError({"until": [_("Must be after since.")]})
        return filters

    def page(self, filters: EventFilters) -> Response:
        raw_cursor = self.request.query_params.get("cursor", "")
        try:
            cursor = EventCursor.decode(raw_cursor) if raw_cursor else None
        except ValueError:
            raise exceptions.ValidationError(
                {"cursor": [_("Not a cursor of this list; follow the next link.")]}
            ) from None
        limit = _positive_int(self.request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
        if limit > MAX_PAGE_SIZE:
            raise exceptions.ValidationError({"limit": [_("At most %d.") % MAX_PAGE_SIZE]})
        try:
            page = events_page(workspace=self.workspace, filters=filters, cursor=cursor, limit=limit)
        except EventQueryTooBroad:
            raise exceptions.ValidationError(
                {"type": [_("Filtering by type alone takes too long here; add name, contact_id or since/until.")]}
            ) from None
        next_url = None
        if page.next_cursor is not None:
            next_url = replace_query_param(self.request.build_absolute_uri(), "cursor", page.next_cursor.encode())
        return Response({"next": next_url, "results": EventSerializer(page.events, many=True).data})


class EventListView(EventsAPIView):
    @extend_schema(
        operation_id="events_list",
        summary="Events of the workspace, newest first",
        description=(
            "Ordered by when each event happened (`occurred_at`), so a late event appears in its place in time. "
            "Follow `next` for older events; the cursor stays valid while new events arrive."
        ),
        parameters=[*FILTERS, CONTACT_FILTER],
        responses={200: EventPageSerializer},
    )
    def get(self, request: Request) -> Response:
        return self.page(self.filters(_positive_int(request, "contact_id", None)))


class ContactEventListView(EventsAPIView):
    @extend_schema(
        operation_id="contacts_events",
        summary="A contact's events, newest first",
        parameters=FILTERS,
        responses={200: EventPageSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, contact_id: int) -> Response:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        return self.page(self.filters(contact.pk))
