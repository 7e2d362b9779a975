"""Watching a series: the dry run, an enrollment's timeline and a contact's enrollments (the
profile's section, loaded by URL: audiences does not import automations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences import selectors as audience_selectors
from audiences.events.selectors import pretty_json
from audiences.segments.registry import RuleContext
from automations import describe, selectors
from automations.dry_run import series_dry_run
from automations.forms import DryRunForm
from automations.views.common import (
    draft_of,
    enrollment_or_404,
    names_for_versions,
    series_or_404,
)
from esp.web import WorkspaceView


class SeriesDryRunView(WorkspaceView):
    """Replay a contact's history against the series (writes nothing, so viewers may run it).
    An htmx request gets the result alone, for the series page; a plain one the whole page."""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        tz = self.workspace.zone
        form = DryRunForm(request.GET or None)
        context: dict[str, Any] = {"series": series, "form": form}
        status = 200
        if form.is_bound:
            if form.is_valid():
                contact = audience_selectors.contact_find(workspace=self.workspace, email=form.cleaned_data["email"])
                if contact is None:
                    form.add_error("email", _("No contact with this address."))
                    status = 400
                else:
                    version = draft_of(series) if form.cleaned_data["version"] == "draft" else None
                    shown = version or series.live_version or selectors.series_latest_version(series=series)
                    names = names_for_versions(self.workspace, series, shown)
                    words = {
                        step.key: step.what
                        for step in describe.step_views(
                            shown.steps if shown else None, names, RuleContext(self.workspace)
                        )
                    }
                    since = dt.datetime.combine(form.cleaned_data["since"], dt.time.min, tzinfo=tz)
                    run = series_dry_run(
                        workspace=self.workspace, series=series, contact=contact, since=since, version=version
                    )
                    context["run"] = run
                    context["lines"] = [(line, words.get(line.step, "")) for line in run.lines]
                    context["contact"] = contact
            else:
                status = 400
        template = "automations/partials/dry_run.html" if request.htmx else "automations/dry_run.html"  # type: ignore[attr-defined]
        with timezone.override(tz):
            return render(request, template, context, status=status)


class EnrollmentView(WorkspaceView):
    def get(self, request: HttpRequest, enrollment_id: int) -> HttpResponse:
        enrollment = enrollment_or_404(self.workspace, enrollment_id)
        trace = selectors.enrollment_trace(workspace=self.workspace, enrollment=enrollment)
        with timezone.override(self.workspace.zone):
            return render(
                request,
                "automations/enrollment.html",
                {
                    "enrollment": enrollment,
                    "lines": [(t, describe.trace_text(t)) for t in trace],
                    "end_reason": describe.reason_text(enrollment.end_reason),
                    "entry_data": pretty_json(enrollment.entry_data) if enrollment.entry_data else "",
                },
            )


class ContactEnrollmentsView(WorkspaceView):
    """The profile's "Series" section: the contact's enrollments, each with its trace."""

    def get(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = audience_selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        rows = [
            {
                "enrollment": row["enrollment"],
                "end_reason": describe.reason_text(row["enrollment"].end_reason),
                "lines": [(t, describe.trace_text(t)) for t in row["trace"]],
            }
            for row in selectors.contact_enrollments(workspace=self.workspace, contact_id=contact.pk)
        ]
        with timezone.override(self.workspace.zone):
            return render(request, "automations/partials/contact_enrollments.html", {"contact": contact, "rows": rows})
