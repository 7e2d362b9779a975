"""The series list, a series' page (settings in words, the step tree with live counts, enrollments)
and the settings form that creates and edits a series."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences import selectors as audience_selectors
from audiences.segments import selectors as segment_selectors
from audiences.segments.registry import RuleContext
from automations import describe, selectors, services
from automations.forms import DryRunForm, SeriesForm, field_for
from automations.models import Series, SeriesStatus
from automations.periods import PERIODS, UnknownPeriod, period_of
from automations.tree import step_tree
from automations.views.common import (
    COUNTS_REFRESH_SECONDS,
    bad_period,
    calls_webhooks,
    draft_of,
    names_for_versions,
    series_or_404,
)
from automations.views.preview import send_to_me_form
from automations.views.step_rows import step_rows
from campaigns.providers.services import delivery_settings_get
from esp.api.errors import error_fields
from esp.input import parse_id
from esp.models import Role, Workspace
from esp.web import WorkspaceView, request_user


class SeriesListView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        archived = request.GET.get("archived") == "1"
        series = list(selectors.series_list(workspace=self.workspace, include_archived=archived))
        figures = selectors.series_figures(workspace=self.workspace, series_ids=[s.pk for s in series])
        rows = [{"series": s, "figures": figures[s.pk]} for s in series]
        return render(request, "automations/series_list.html", {"rows": rows, "archived": archived})


def _steps_context(workspace: Workspace, series: Series, period: str) -> dict[str, Any]:
    draft = draft_of(series)
    live = series.live_version
    shown = live or draft
    names = names_for_versions(workspace, series, live, draft)
    rows = step_rows(workspace, series, shown, names, period)
    return {
        "series": series,
        "shown_version": shown,
        "steps": rows,
        # The same rows drawn as the branching tree; the trigger heads it, also when htmx
        # refreshes only this part.
        "tree": step_tree(shown.steps if shown else None, {row["step"].key: row for row in rows}),
        "trigger": describe.trigger_text(series.trigger or {}, names),
        "polling": series.status in (SeriesStatus.LIVE, SeriesStatus.PAUSED),
        "refresh_seconds": COUNTS_REFRESH_SECONDS,
        "names": names,
        "draft": draft,
        "period": period,
        "periods": list(PERIODS.items()),
        "goal_event": (series.goal or {}).get("event", ""),
    }


def _period_or_400(request: HttpRequest) -> str | HttpResponse:
    try:
        return period_of(request.GET.get("period"))
    except UnknownPeriod:
        return bad_period(request)


class SeriesView(WorkspaceView):
    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        period = _period_or_400(request)
        if isinstance(period, HttpResponse):
            return period
        context = _steps_context(self.workspace, series, period)
        draft, live, names = context["draft"], series.live_version, context["names"]
        ctx = RuleContext(self.workspace)
        before = parse_id(request.GET.get("before", ""))
        enrollments = selectors.enrollments_page(workspace=self.workspace, series=series, before=before)
        context.update(
            figures=selectors.series_figures(workspace=self.workspace, series_ids=[series.pk])[series.pk],
            flow_filter=describe.flow_filter_text(series, ctx),
            goal=describe.goal_text(series.goal or {}),
            re_entry=describe.re_entry_text(series),
            priority=describe.priority_text(series.priority),
            draft_differs=draft is not None and live is not None and draft.steps != live.steps,
            draft_steps=describe.step_views(draft.steps, names, ctx) if draft is not None and live is not None else [],
            enrollment_rows=[{"enrollment": e, "reason": describe.reason_text(e.end_reason)} for e in enrollments],
            paged=before is not None,
            next_before=enrollments[-1].pk if len(enrollments) == selectors.PAGE_SIZE else None,
            dry_run_form=DryRunForm(initial={"since": (timezone.now() - dt.timedelta(days=30)).date()}),
            can_publish=series.status != SeriesStatus.ARCHIVED and draft is not None,
            # A receiver of the series' webhooks checks their signature with this secret: shown
            # to those who may change the series, only when a version calls a webhook.
            webhook_secret=series.webhook_secret if self.can(Role.MARKETER) and calls_webhooks(series, draft) else "",
            send_to_me_form=send_to_me_form(series, request_user(request).email) if self.can(Role.MARKETER) else None,
        )
        with timezone.override(self.workspace.zone):
            return render(request, "automations/series.html", context)


class SeriesStepsView(WorkspaceView):
    """The steps with their live counts: the part of the series page that htmx refreshes."""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        period = _period_or_400(request)
        if isinstance(period, HttpResponse):
            return period
        response = render(request, "automations/partials/steps.html", _steps_context(self.workspace, series, period))
        if request.headers.get("HX-Trigger") == "steps-period":
            # Chosen in the select, not a poll: the address bar keeps it for a reload.
            response["HX-Replace-Url"] = f"{reverse('series', args=[series.pk])}?period={period}"
        return response


class SeriesFormView(WorkspaceView):
    """Viewers may look at the form (as at a segment's); only marketers save."""

    def _form(self, data: Any = None, initial: dict[str, Any] | None = None) -> SeriesForm:
        lists = list(audience_selectors.lists(workspace=self.workspace).order_by("name").values_list("pk", "name"))
        segments = list(segment_selectors.segments(workspace=self.workspace).order_by("name").values_list("pk", "name"))
        form = SeriesForm(data, initial=initial, lists=lists, segments=segments)
        if not self.can(Role.MARKETER):
            form.fields["flow_filter"].widget.attrs["readonly"] = True  # the rule builder draws read-only
        return form

    def _render(self, request: HttpRequest, form: SeriesForm, series: Series | None, status: int = 200) -> HttpResponse:
        context = {"form": form, "series": series, "delivery": delivery_settings_get(self.workspace)}
        return render(request, "automations/series_form.html", context, status=status)

    def _save(self, request: HttpRequest, series: Series | None) -> HttpResponse:
        with timezone.override(self.workspace.zone):
            form = self._form(request.POST)
            if not form.is_valid():
                return self._render(request, form, series, status=400)
            try:
                data = form.series_input()
                if series is None:
                    saved = services.series_create(workspace=self.workspace, data=data)
                else:
                    latest = selectors.series_latest_version(series=series)
                    if data.steps is not None and latest is not None and data.steps == latest.steps:
                        # Unchanged steps would open a new draft identical to the live version.
                        data = services.SeriesInput(**{**data.__dict__, "steps": None})
                    saved = services.series_update(workspace=self.workspace, series_id=series.pk, data=data)
            except ValidationError as error:
                for path, problems in error_fields(error).items():
                    name, show_path = field_for(path, form)
                    for problem in problems:
                        form.add_error(name, f"{path}: {problem}" if show_path else problem)
                return self._render(request, form, series, status=400)
        messages.success(request, _("Series saved."))
        # A new series has no steps yet: the builder is where they are added.
        return redirect("series-builder" if series is None else "series", series_id=saved.pk)


class SeriesCreateView(SeriesFormView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, self._form(), None)

    def post(self, request: HttpRequest) -> HttpResponse:
        return self._save(request, None)


class SeriesEditView(SeriesFormView):
    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        latest = selectors.series_latest_version(series=series)
        with timezone.override(self.workspace.zone):
            initial = SeriesForm.initial_for(series, latest.steps if latest else None)
            return self._render(request, self._form(initial=initial), series)

    def post(self, request: HttpRequest, series_id: int) -> HttpResponse:
        return self._save(request, series_or_404(self.workspace, series_id))
