"""Browser pages of the send log: the workspace's messages (filters, keyset pages), one
message with its events and a preview, and the "Messages" section of a contact's profile
(loaded by htmx; audiences does not import campaigns, its template names this page's URL).
Also the editor's "send test": a page that sends sits above delivery, not inside content."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _

from audiences import selectors as audience_selectors
from audiences.events.selectors import pretty_json
from campaigns import selectors
from campaigns.content import selectors as content_selectors
from campaigns.content.starters import SAMPLE_CONTACT
from campaigns.content.views import EditorView
from campaigns.delivery.services import message_send_test
from campaigns.models import MessageClass, MessageState, SkipReason
from campaigns.selectors import (
    ContactMessageCursor,
    MessageFilters,
    MessagePage,
    MessageQueryTooBroad,
    StateCounts,
)
from esp.forms import TimeRangeForm
from esp.input import parse_id
from esp.web import WorkspaceView, request_user

LOG_PAGE_SIZE = 50
PROFILE_PAGE_SIZE = 10


class MessageFilterForm(TimeRangeForm):
    """The send log's filters. Times are read in the workspace's time zone (the view
    activates it)."""

    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("Any")), *MessageState.choices])
    reason = forms.ChoiceField(label=_("Reason"), required=False, choices=[("", _("Any")), *SkipReason.choices])
    message_class = forms.ChoiceField(
        label=_("Kind of mail"), required=False, choices=[("", _("Any")), *MessageClass.choices]
    )
    source = forms.CharField(
        label=_("Source starts with"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "broadcast:12, step:, tx:"}),
    )
    template = forms.TypedChoiceField(label=_("Template"), required=False, coerce=int, empty_value=None)
    email = forms.CharField(
        label=_("Recipient"),
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("name@example.com")}),
    )
    email_match = forms.ChoiceField(
        label=_("Match the address"),
        required=False,
        choices=[("exact", _("exactly")), ("prefix", _("by its start"))],
    )

    def __init__(self, *args: Any, templates: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        template_field = self.fields["template"]
        assert isinstance(template_field, forms.TypedChoiceField)
        template_field.choices = [("", _("Any")), *templates]

    def filters(self) -> MessageFilters:
        data = self.cleaned_data
        return MessageFilters(
            state=data.get("state") or "",
            reason=data.get("reason") or "",
            message_class=data.get("message_class") or "",
            source=(data.get("source") or "").strip(),
            template_id=data.get("template"),
            email=(data.get("email") or "").strip(),
            email_match=data.get("email_match") or "exact",
            since=data.get("since"),
            until=data.get("until"),
        )


def _before(request: HttpRequest) -> int | None:
    """The keyset cursor from the query string; a damaged one starts again at the newest."""
    value = request.GET.get("before", "")
    return parse_id(value)


class MessagesView(WorkspaceView):
    """The send log: every email of the workspace, newest first, filtered, keyset-paginated."""

    def get(self, request: HttpRequest) -> HttpResponse:
        with timezone.override(self.workspace.zone):
            return self._get(request)

    def _get(self, request: HttpRequest) -> HttpResponse:
        form = MessageFilterForm(request.GET, templates=selectors.templates_for_filter(workspace=self.workspace))
        page, counts, too_broad = MessagePage(messages=[], next_cursor=None), StateCounts(), False
        filters = MessageFilters()
        if form.is_valid():
            filters = form.filters()
            try:
                page = selectors.messages_page(
                    workspace=self.workspace, filters=filters, before=_before(request), limit=LOG_PAGE_SIZE
                )
                counts = selectors.message_state_counts(workspace=self.workspace, filters=filters)
            except MessageQueryTooBroad:
                too_broad = True
        query = request.GET.copy()
        query.pop("before", None)
        by_state = query.copy()  # the per-state links replace the state filter
        by_state.pop("state", None)
        return render(
            request,
            "campaigns/messages/list.html",
            {
                "form": form,
                "filters": filters,
                "messages_page": page.messages,
                "next_cursor": page.next_cursor,
                "counts": counts,
                "count_cap": selectors.COUNT_CAP,
                "too_broad": too_broad,
                "paged": "before" in request.GET,
                "query": query.urlencode(),
                "by_state_query": by_state.urlencode(),
                "time_zone": self.workspace.zone.key,
            },
        )


class RecentSendsView(WorkspaceView):
    """The Overview page's "last sends" (loaded into esp's home page by URL): the latest emails
    with their open and click rates."""

    def get(self, request: HttpRequest) -> HttpResponse:
        sends = selectors.recent_sends(workspace=self.workspace)
        return render(
            request,
            "campaigns/messages/overview.html",
            {"sends": sends, "window": selectors.RECENT_WINDOW},
        )


class MessageView(WorkspaceView):
    """One message: every field, why it was skipped or failed, what happened to it, its
    links, and its content rendered again in a sandboxed frame."""

    def get(self, request: HttpRequest, email_id: int) -> HttpResponse:
        message = selectors.message_get(workspace=self.workspace, email_id=email_id)
        with timezone.override(self.workspace.zone):
            return render(
                request,
                "campaigns/messages/detail.html",
                {
                    "message": message,
                    "events": selectors.message_events(workspace=self.workspace, message=message),
                    "preview": selectors.message_preview(workspace=self.workspace, message=message),
                    "data_json": pretty_json(message.data) if message.data else "",
                    "time_zone": self.workspace.zone.key,
                },
            )


def _profile_cursor(request: HttpRequest) -> ContactMessageCursor | None:
    try:
        return ContactMessageCursor.decode(request.GET.get("cursor", ""))
    except ValueError:
        return None


class ContactMessagesView(WorkspaceView):
    """The profile's "Messages" section: the contact's engagement and newest messages; with a
    cursor, only the next (older) rows, which replace the "Older messages" button."""

    def get(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = audience_selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        cursor = _profile_cursor(request) if "cursor" in request.GET else None
        page = selectors.contact_messages(
            workspace=self.workspace, contact_id=contact.pk, cursor=cursor, limit=PROFILE_PAGE_SIZE
        )
        context: dict[str, Any] = {
            "contact": contact,
            "message_rows": page.messages,
            "messages_next": page.next_cursor.encode() if page.next_cursor else "",
            "older_page": cursor is not None,
        }
        if cursor is None:
            context["engagement"] = selectors.contact_engagement(workspace=self.workspace, contact_id=contact.pk)
            return render(request, "campaigns/partials/contact_messages.html", context)
        return render(request, "campaigns/messages/contact_rows.html", context)


class TemplateTestView(EditorView):
    """Save the editor's content (what the marketer sees in the preview is what they test),
    then send that version to the logged-in user, for the chosen sample contact and event."""

    def post(self, request: HttpRequest, template_id: int) -> HttpResponse:
        saved = self._save(request, content_selectors.template_get(workspace=self.workspace, template_id=template_id))
        if isinstance(saved, HttpResponse):
            return saved  # nothing is sent from a template that cannot be saved
        contact, event = self._sample(request)
        user = request_user(request)
        try:
            message = message_send_test(
                workspace=self.workspace,
                template=saved,
                to_email=user.email,
                sample_contact=contact,
                # The preview's built-in person when no contact was chosen: the test shows what the preview did.
                sample_data=None if contact is not None else SAMPLE_CONTACT,
                event=event,
            )
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
        else:
            messages.success(
                request,
                format_html(
                    gettext_now(
                        "Saved (version {version}); a test is on its way to {email}: "
                        '<a href="{url}">follow it in the send log</a>.'
                    ),
                    version=saved.version,
                    email=user.email,
                    url=reverse("message", args=[message.pk]),
                ),
            )
        return redirect("content-template", template_id=saved.pk)
