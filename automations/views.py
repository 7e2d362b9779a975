"""Browser pages of series: the list, a series' page (settings in words, steps with live counts,
enrollments, actions, a dry run), an enrollment's timeline, a contact's enrollments (the
profile's section, loaded by URL: audiences does not import automations), the form that
creates and edits a series until the visual builder exists, and "create from recipe".

Viewers read; marketers change. Every write goes through automations.services; another
workspace's series, enrollment or contact is a 404.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from abc import ABC, abstractmethod
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences import selectors as audience_selectors
from audiences.events.selectors import pretty_json
from audiences.segments import selectors as segment_selectors
from audiences.segments.registry import RuleContext
from automations import describe, selectors, services
from automations.dry_run import series_dry_run
from automations.forms import DryRunForm, PublishForm, RecipeForm, ResumeForm, SeriesForm, field_for
from automations.models import Enrollment, Series, SeriesKind, SeriesStatus, SeriesVersion
from automations.recipes import RECIPES, series_from_recipe
from automations.tree import step_tree
from esp.api.errors import error_fields
from esp.input import parse_id
from esp.models import Role, Workspace
from esp.web import WorkspaceView, confirm_page

# The series page's counts refresh this often while the series runs.
COUNTS_REFRESH_SECONDS = 5


def _time_zone(workspace: Workspace) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(workspace.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _series(workspace: Workspace, series_id: int) -> Series:
    try:
        return selectors.series_get(workspace=workspace, series_id=series_id)
    except Series.DoesNotExist:
        raise Http404 from None


def _enrollment(workspace: Workspace, enrollment_id: int) -> Enrollment:
    try:
        return selectors.enrollment_get(workspace=workspace, enrollment_id=enrollment_id)
    except Enrollment.DoesNotExist:
        raise Http404 from None


def _draft(series: Series) -> SeriesVersion | None:
    """The unpublished latest version, if there is one."""
    latest = selectors.series_latest_version(series=series)
    return latest if latest is not None and latest.published_at is None else None


def _names(workspace: Workspace, series: Series, *versions: SeriesVersion | None) -> describe.Names:
    templates: set[int] = set()
    lists: set[int] = set()
    segments: set[int] = set()
    for version in versions:
        t, li, s = describe.referenced_ids(series, version.steps if version else None)
        templates |= t
        lists |= li
        segments |= s
    return describe.Names(
        **selectors.names_for(workspace=workspace, template_ids=templates, list_ids=lists, segment_ids=segments)
    )


def _error_text(error: ValidationError) -> str:
    return " ".join(" ".join(messages) for messages in error_fields(error).values())


def _kind_label(kind: str) -> str:
    return str(SeriesKind(kind).label) if kind in SeriesKind.values else kind


class SeriesListView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        archived = request.GET.get("archived") == "1"
        series = list(selectors.series_list(workspace=self.workspace, include_archived=archived))
        figures = selectors.series_figures(workspace=self.workspace, series_ids=[s.pk for s in series])
        rows = [{"series": s, "figures": figures[s.pk]} for s in series]
        return render(request, "automations/series_list.html", {"rows": rows, "archived": archived})


def _step_rows(workspace: Workspace, series: Series, version: SeriesVersion | None, names: describe.Names) -> list[Any]:
    counts = selectors.series_step_counts(workspace=workspace, series=series)
    ctx = RuleContext(workspace)
    rows = []
    for step in describe.step_views(version.steps if version else None, names, ctx):
        count = counts.get(step.key, selectors.StepCounts())
        rows.append(
            {
                "step": step,
                "counts": count,
                "skipped": sorted(
                    ((describe.skip_reason_text(reason), n) for reason, n in count.skipped.items()),
                    key=lambda item: -item[1],
                ),
                "branches": sorted((describe.branch_text(b), n) for b, n in count.branches.items()),
                "open_rate": round(100 * count.opened / count.sent) if count.sent else None,
                "click_rate": round(100 * count.clicked / count.sent) if count.sent else None,
            }
        )
    return rows


def _steps_context(workspace: Workspace, series: Series) -> dict[str, Any]:
    draft = _draft(series)
    live = series.live_version
    shown = live or draft
    names = _names(workspace, series, live, draft)
    rows = _step_rows(workspace, series, shown, names)
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
    }


class SeriesView(WorkspaceView):
    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = _series(self.workspace, series_id)
        context = _steps_context(self.workspace, series)
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
            webhook_secret=series.webhook_secret if self.can(Role.MARKETER) and _calls_webhooks(series, draft) else "",
        )
        with timezone.override(_time_zone(self.workspace)):
            return render(request, "automations/series.html", context)


class SeriesStepsView(WorkspaceView):
    """The steps with their live counts: the part of the series page that htmx refreshes."""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = _series(self.workspace, series_id)
        return render(request, "automations/partials/steps.html", _steps_context(self.workspace, series))


class SeriesFormView(WorkspaceView):
    """Viewers may look at the form (as at a segment's); only marketers save."""

    def _form(self, data: Any = None, initial: dict[str, Any] | None = None) -> SeriesForm:
        lists = list(audience_selectors.lists(workspace=self.workspace).order_by("name").values_list("pk", "name"))
        segments = list(segment_selectors.segments(workspace=self.workspace).order_by("name").values_list("pk", "name"))
        return SeriesForm(data, initial=initial, lists=lists, segments=segments)

    def _render(self, request: HttpRequest, form: SeriesForm, series: Series | None, status: int = 200) -> HttpResponse:
        return render(request, "automations/series_form.html", {"form": form, "series": series}, status=status)

    def _save(self, request: HttpRequest, series: Series | None) -> HttpResponse:
        with timezone.override(_time_zone(self.workspace)):
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
        return redirect("series", series_id=saved.pk)


class SeriesCreateView(SeriesFormView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, self._form(), None)

    def post(self, request: HttpRequest) -> HttpResponse:
        return self._save(request, None)


class SeriesEditView(SeriesFormView):
    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = _series(self.workspace, series_id)
        latest = selectors.series_latest_version(series=series)
        with timezone.override(_time_zone(self.workspace)):
            initial = SeriesForm.initial_for(series, latest.steps if latest else None)
            return self._render(request, self._form(initial=initial), series)

    def post(self, request: HttpRequest, series_id: int) -> HttpResponse:
        return self._save(request, _series(self.workspace, series_id))


class SeriesActionView(WorkspaceView, ABC):
    """Publish, pause, resume, archive: a confirmation page on GET, the action on POST. Each
    action says what its confirmation page shows and what it does."""

    read_role = Role.MARKETER
    action = ""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = _series(self.workspace, series_id)
        title, question, consequences, button, form = self.confirmation(series)
        return confirm_page(
            request,
            title=title,
            question=question,
            consequences=consequences,
            button=button,
            cancel=reverse("series", args=[series.pk]),
            form=form,
        )

    def post(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = _series(self.workspace, series_id)
        try:
            done = self.act(request, series)
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, done)
        return redirect("series", series_id=series.pk)

    @abstractmethod
    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]: ...

    @abstractmethod
    def act(self, request: HttpRequest, series: Series) -> str: ...


class SeriesPublishView(SeriesActionView):
    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]:
        draft = _draft(series)
        lines = []
        if draft is None:
            lines.append(_("There is no draft to publish: change the steps first."))
        else:
            lines.append(_("Contacts who meet the trigger from now on enter version %(n)d.") % {"n": draft.number})
            if series.live_version is not None:
                lines.append(
                    _("People already inside keep the version they entered with, unless you tick the box below.")
                )
            if series.status == SeriesStatus.DRAFT:
                lines.append(_("The series goes live: its trigger starts enrolling contacts."))
        return (
            _("Publish series"),
            _("Publish the draft of %(name)s?") % {"name": series.name},
            lines,
            _("Publish"),
            PublishForm() if series.live_version is not None else None,
        )

    def act(self, request: HttpRequest, series: Series) -> str:
        form = PublishForm(request.POST)
        move = form.is_valid() and form.cleaned_data["move_waiting"]
        version = services.series_publish(workspace=self.workspace, series_id=series.pk, move_waiting=move)
        return _("Version %(n)d is live.") % {"n": version.number}


class SeriesPauseView(SeriesActionView):
    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]:
        return (
            _("Pause series"),
            _("Pause %(name)s?") % {"name": series.name},
            [
                _("Nobody enters while the series is paused."),
                _("Steps that fall due wait; emails already queued are held until you resume."),
            ],
            _("Pause"),
            None,
        )

    def act(self, request: HttpRequest, series: Series) -> str:
        services.series_pause(workspace=self.workspace, series_id=series.pk)
        return _("Series paused.")


class SeriesResumeView(SeriesActionView):
    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]:
        return (
            _("Resume series"),
            _("Resume %(name)s?") % {"name": series.name},
            [
                _("Contacts enter again and steps that fell due while paused run now."),
                _("An email step that fell due longer ago than you set below is skipped (traced as stale)."),
            ],
            _("Resume"),
            ResumeForm(),
        )

    def act(self, request: HttpRequest, series: Series) -> str:
        form = ResumeForm(request.POST)
        if not form.is_valid():
            raise ValidationError(
                {field: [str(e) for e in errors] for field, errors in form.errors.items()}  # shown on the series page
            )
        hours = form.cleaned_data.get("skip_older_than_hours")
        services.series_resume(
            workspace=self.workspace,
            series_id=series.pk,
            skip_older_than=dt.timedelta(hours=hours) if hours else None,
        )
        return _("Series resumed.")


class SeriesArchiveView(SeriesActionView):
    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]:
        live = selectors.series_figures(workspace=self.workspace, series_ids=[series.pk])[series.pk].active
        return (
            _("Archive series"),
            _("Archive %(name)s?") % {"name": series.name},
            [
                ngettext(
                    "%(count)d person inside leaves the series now (traced as exited).",
                    "%(count)d people inside leave the series now (traced as exited).",
                    live,
                )
                % {"count": live},
                _("The series and its figures stay readable; it cannot be changed or published again."),
            ],
            _("Archive"),
            None,
        )

    def act(self, request: HttpRequest, series: Series) -> str:
        services.series_archive(workspace=self.workspace, series_id=series.pk)
        return _("Series archived.")


class SeriesWebhookSecretView(SeriesActionView):
    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]:
        return (
            _("New webhook secret"),
            _("Make a new signing secret for the webhooks of %(name)s?") % {"name": series.name},
            [
                _("Webhooks sent from now on are signed with the new secret."),
                _("Receivers that check the signature refuse them until they are given the new secret."),
            ],
            _("Make a new secret"),
            None,
        )

    def act(self, request: HttpRequest, series: Series) -> str:
        services.series_webhook_secret_rotate(workspace=self.workspace, series_id=series.pk)
        return _("The series has a new webhook secret.")


def _calls_webhooks(series: Series, draft: SeriesVersion | None) -> bool:
    versions = [v for v in (series.live_version, draft) if v is not None]
    return any(step.get("type") == "webhook" for v in versions for step in v.steps.get("steps", []))


class SeriesDryRunView(WorkspaceView):
    """Replay a contact's history against the series (writes nothing, so viewers may run it).
    An htmx request gets the result alone, for the series page; a plain one the whole page."""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = _series(self.workspace, series_id)
        tz = _time_zone(self.workspace)
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
                    version = _draft(series) if form.cleaned_data["version"] == "draft" else None
                    shown = version or series.live_version or selectors.series_latest_version(series=series)
                    names = _names(self.workspace, series, shown)
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
        enrollment = _enrollment(self.workspace, enrollment_id)
        trace = selectors.enrollment_trace(workspace=self.workspace, enrollment=enrollment)
        with timezone.override(_time_zone(self.workspace)):
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
        with timezone.override(_time_zone(self.workspace)):
            return render(request, "automations/partials/contact_enrollments.html", {"contact": contact, "rows": rows})


class RecipesView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def _render(self, request: HttpRequest, error: str = "", status: int = 200) -> HttpResponse:
        return render(
            request,
            "automations/recipes.html",
            {"recipes": [{"recipe": r, "kind": _kind_label(r.kind)} for r in RECIPES.values()], "error": error},
            status=status,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = RecipeForm(request.POST)
        key = form.cleaned_data["recipe"] if form.is_valid() else ""
        if key not in RECIPES:
            return self._render(request, _("Choose one of the recipes below."), status=400)
        try:
            series = series_from_recipe(workspace=self.workspace, recipe_key=key)
        except ValidationError as error:
            return self._render(request, _error_text(error), status=400)
        messages.success(request, _("Draft series created from the recipe: check it, then publish it."))
        return redirect("series", series_id=series.pk)
