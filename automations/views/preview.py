""" "Send every email of this series to me": the form on the series page (and on a page of its
own, where a refused form comes back with its errors). Marketers only: viewers get a 403."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audiences import selectors as audience_selectors
from automations.models import Series, SeriesVersion
from automations.preview_send import (
    EVENT_AUTO,
    EVENT_ENROLLMENT,
    EVENT_NONE,
    EVENT_TRIGGER,
    MAX_MINUTES_APART,
    series_send_to_me,
)
from automations.views.common import draft_of, series_or_404
from esp.models import Role
from esp.web import WorkspaceView, request_user


class SendToMeForm(forms.Form):
    to_email = forms.EmailField(
        label=gettext_lazy("Send to"),
        max_length=254,
        help_text=gettext_lazy("Your address or another team member's."),
    )
    contact_email = forms.EmailField(
        label=gettext_lazy("Personalise as contact"),
        max_length=254,
        required=False,
        help_text=gettext_lazy("The address of a contact of this workspace; empty: the editor's sample person."),
    )
    event_data = forms.ChoiceField(
        label=gettext_lazy("Event data"),
        choices=[
            (
                EVENT_AUTO,
                gettext_lazy(
                    "The contact's latest entry into this series, else their latest trigger event, else a sample"
                ),
            ),
            (EVENT_ENROLLMENT, gettext_lazy("The contact's latest entry into this series")),
            (EVENT_TRIGGER, gettext_lazy("The contact's latest trigger event")),
            (EVENT_NONE, gettext_lazy("None")),
        ],
        initial=EVENT_AUTO,
    )
    minutes_apart = forms.IntegerField(
        label=gettext_lazy("Minutes apart"), min_value=0, max_value=MAX_MINUTES_APART, initial=2
    )
    version = forms.ChoiceField(
        label=gettext_lazy("Version"),
        required=False,
        choices=[("live", gettext_lazy("Live version")), ("draft", gettext_lazy("Draft"))],
        initial="live",
    )


def send_to_me_form(series: Series, email: str, data: Any = None) -> SendToMeForm:
    """The form, with the version field only when there are a live version and a draft to choose from."""
    form = SendToMeForm(data, initial={"to_email": email}, auto_id="send-to-me-%s")
    if series.live_version is None or draft_of(series) is None:
        del form.fields["version"]
    return form


class SeriesSendToMeView(WorkspaceView):
    read_role = Role.MARKETER

    def _render(self, request: HttpRequest, series: Series, form: SendToMeForm, status: int = 200) -> HttpResponse:
        return render(request, "automations/send_to_me.html", {"series": series, "form": form}, status=status)

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        return self._render(request, series, send_to_me_form(series, request_user(request).email))

    def post(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        form = send_to_me_form(series, request_user(request).email, request.POST)
        if not form.is_valid():
            return self._render(request, series, form, status=400)
        data = form.cleaned_data
        contact = None
        if data["contact_email"]:
            contact = audience_selectors.contact_find(workspace=self.workspace, email=data["contact_email"])
            if contact is None:
                form.add_error("contact_email", _("No contact with this address."))
                return self._render(request, series, form, status=400)
        draft = draft_of(series)
        version: SeriesVersion | None = draft if data.get("version") == "draft" else series.live_version or draft
        if version is None:
            form.add_error(None, _("This series has no steps yet."))
            return self._render(request, series, form, status=400)
        try:
            sent = series_send_to_me(
                workspace=self.workspace,
                series=series,
                version=version,
                to_email=data["to_email"],
                contact=contact,
                event_source=data["event_data"],
                minutes_apart=data["minutes_apart"],
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, problems in error.error_dict.items():
                    for problem in problems:
                        form.add_error(field if field in form.fields else None, problem)
            else:
                for text in error.messages:
                    form.add_error(None, text)
            return self._render(request, series, form, status=400)
        count = len(sent.messages)
        said = ngettext(
            "%(n)d email of version %(version)d is on its way to %(email)s.",
            "%(n)d emails of version %(version)d are on their way to %(email)s.",
            count,
        ) % {"n": count, "version": version.number, "email": sent.messages[0].to_email}
        if count > 1 and data["minutes_apart"]:
            said += " " + _("One every %(minutes)d minutes, in the order the steps are drawn.") % {
                "minutes": data["minutes_apart"]
            }
        messages.success(
            request, format_html('{} <a href="{}">{}</a>', said, reverse("messages"), _("Follow them in the send log."))
        )
        return redirect("series", series_id=series.pk)
