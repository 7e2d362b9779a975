"""Browser pages of the event store: the event explorer, and the timeline on a contact's
profile (its first page is rendered with the profile; older pages come by htmx)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audiences import selectors
from audiences.events.selectors import (
    EventCursor,
    EventFilters,
    EventPage,
    EventQueryTooBroad,
    contact_timeline,
    event_name_counts,
    event_names,
    event_summary,
    events_page,
    pretty_json,
)
from audiences.models import Contact, Event, EventType
from esp.forms import TimeRangeForm
from esp.models import Workspace
from esp.web import WorkspaceView

TIMELINE_PAGE_SIZE = 20
EXPLORER_PAGE_SIZE = 50
# An event received this long after it happened is shown as late, with both times: SDKs
# flush within seconds, so more means an offline device, a retried batch or a backfill.
LATE_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class EventRow:
    event: Event
    summary: str
    late: bool
    properties_json: str
    context_json: str


def event_rows(events: list[Event]) -> list[EventRow]:
    return [
        EventRow(
            event=event,
            summary=event_summary(event),
            late=event.received_at - event.occurred_at > LATE_AFTER,
            properties_json=pretty_json(event.properties),
            context_json=pretty_json(event.context) if event.context else "",
        )
        for event in events
    ]


def _cursor(request: HttpRequest) -> EventCursor | None:
    """A cursor from the query string; a damaged one starts again at the newest events."""
    try:
        return EventCursor.decode(request.GET.get("cursor", ""))
    except ValueError:
        return None


def timeline_context(*, workspace: Workspace, contact: Contact) -> dict[str, Any]:
    """What the profile page needs to show the first page of the contact's timeline."""
    page = contact_timeline(workspace=workspace, contact_id=contact.pk, limit=TIMELINE_PAGE_SIZE)
    return {
        "timeline_rows": event_rows(page.events),
        "timeline_next": page.next_cursor.encode() if page.next_cursor else "",
    }


class ContactEventsView(WorkspaceView):
    """The next (older) page of a contact's timeline: table rows for the profile's htmx
    "Older events" button, which they replace."""

    def get(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        page = contact_timeline(
            workspace=self.workspace, contact_id=contact.pk, cursor=_cursor(request), limit=TIMELINE_PAGE_SIZE
        )
        return render(
            request,
            "audiences/partials/timeline.html",
            {
                "contact": contact,
                "timeline_rows": event_rows(page.events),
                "timeline_next": page.next_cursor.encode() if page.next_cursor else "",
                "older_page": True,
            },
        )


class EventFilterForm(TimeRangeForm):
    """The explorer's filters. Times are read in the workspace's time zone (the view
    activates it)."""

    name = forms.CharField(label=_("Event"), required=False, max_length=200)
    type = forms.ChoiceField(label=_("Type"), required=False, choices=[("", _("Any")), *EventType.choices])
    email = forms.CharField(label=_("Contact email"), required=False, max_length=254)


class EventsView(WorkspaceView):
    """The event explorer: the workspace's events newest first, filtered by name, type,
    contact and time, with their properties, keyset-paginated."""

    def get(self, request: HttpRequest) -> HttpResponse:
        with timezone.override(self.workspace.zone):
            return self._get(request)

    def _get(self, request: HttpRequest) -> HttpResponse:
        form = EventFilterForm(request.GET)
        data = form.cleaned_data if form.is_valid() else {}
        email = (data.get("email") or "").strip()
        contact = selectors.contact_find(workspace=self.workspace, email=email) if email else None
        filters = EventFilters(
            name=data.get("name") or "",
            type=data.get("type") or "",
            contact_id=contact.pk if contact else None,
            since=data.get("since"),
            until=data.get("until"),
        )
        page, counts, too_broad = EventPage(events=[], next_cursor=None), [], False
        # Invalid filters, or an address of nobody: show nothing rather than everything.
        if form.is_valid() and not (email and contact is None):
            try:
                page = events_page(
                    workspace=self.workspace, filters=filters, cursor=_cursor(request), limit=EXPLORER_PAGE_SIZE
                )
            except EventQueryTooBroad:
                too_broad = True
            counts = event_name_counts(workspace=self.workspace, filters=filters)
        names = event_names(workspace=self.workspace)
        if filters.name and filters.name not in names:
            names = sorted([*names, filters.name])
        query = request.GET.copy()
        query.pop("cursor", None)
        by_name = query.copy()  # the per-name links replace the name filter
        by_name.pop("name", None)
        return render(
            request,
            "audiences/events.html",
            {
                "form": form,
                "filters": filters,
                "email": email or request.GET.get("email", "").strip(),
                "contact": contact,
                "unknown_email": bool(email and contact is None),
                "too_broad": too_broad,
                "names": names,
                "counts": counts,
                "rows": event_rows(page.events),
                "next_cursor": page.next_cursor.encode() if page.next_cursor else "",
                "paged": "cursor" in request.GET,
                "query": query.urlencode(),
                "by_name_query": by_name.urlencode(),
                "time_zone": self.workspace.zone.key,
            },
        )
