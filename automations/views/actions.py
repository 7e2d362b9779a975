"""Publish, pause, resume, archive, a new webhook secret: a confirmation page, then the action."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences.segments.registry import RuleContext
from automations import selectors, services
from automations.forms import ChangedWait, PublishForm, ResumeForm
from automations.models import Series, SeriesStatus
from automations.versions import StepsDiff, steps_diff
from automations.views.common import (
    draft_of,
    error_text,
    names_for_versions,
    series_or_404,
)
from esp.models import Role
from esp.web import WorkspaceView, confirm_page, request_user


class SeriesActionView(WorkspaceView, ABC):
    """Publish, pause, resume, archive: a confirmation page on GET, the action on POST. Each
    action says what its confirmation page shows and what it does."""

    read_role = Role.MARKETER
    action = ""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
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
        series = series_or_404(self.workspace, series_id)
        try:
            done = self.act(request, series)
        except ValidationError as error:
            messages.error(request, error_text(error))
        else:
            messages.success(request, done)
        return redirect("series", series_id=series.pk)

    @abstractmethod
    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]: ...

    @abstractmethod
    def act(self, request: HttpRequest, series: Series) -> str: ...


class SeriesPublishView(SeriesActionView):
    """The confirmation shows what the draft changes from the live version, and offers each
    changed wait to the people waiting on it now."""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        title, question, consequences, button, form = self.confirmation(series)
        return render(
            request,
            "automations/publish.html",
            {
                "title": title,
                "question": question,
                "consequences": consequences,
                "button": button,
                "cancel": reverse("series", args=[series.pk]),
                "action": request.path,
                "form": form,
                "series": series,
                "diff": self._diff(series),
            },
        )

    def _diff(self, series: Series) -> StepsDiff | None:
        """The draft against the live version (None: no draft); worked out once per request."""
        if not hasattr(self, "_draft_diff"):
            draft, live = draft_of(series), series.live_version
            names = names_for_versions(self.workspace, series, live, draft)
            self._draft_diff = (
                steps_diff(live.steps if live else None, draft.steps, names, RuleContext(self.workspace))
                if draft is not None
                else None
            )
        return self._draft_diff

    def _changed_waits(self, series: Series) -> list[ChangedWait]:
        diff = self._diff(series)
        draft = draft_of(series)
        if diff is None or draft is None or series.live_version is None:
            return []
        waiting = selectors.waiting_on_steps(
            workspace=self.workspace, series=series, steps=draft.steps, keys=diff.changed_waits
        )
        waits = []
        for key in diff.changed_waits:
            change = diff.change(key)
            if change is not None:
                waits.append(ChangedWait(key, change.name, change.before, change.after, waiting[key]))
        return waits

    def confirmation(self, series: Series) -> tuple[str, str, list[str], str, Any]:
        draft = draft_of(series)
        lines = []
        if draft is None:
            lines.append(_("There is no draft to publish: change the steps first."))
        else:
            lines.append(_("Contacts who meet the trigger from now on enter version %(n)d.") % {"n": draft.number})
            if series.live_version is not None:
                lines.append(
                    _("People already inside keep the version they entered with, unless you tick a box below.")
                )
            if series.status == SeriesStatus.DRAFT:
                lines.append(_("The series goes live: its trigger starts enrolling contacts."))
        return (
            _("Publish series"),
            _("Publish the draft of %(name)s?") % {"name": series.name},
            lines,
            _("Publish"),
            PublishForm(waits=self._changed_waits(series)) if series.live_version is not None else None,
        )

    def act(self, request: HttpRequest, series: Series) -> str:
        form = PublishForm(request.POST, waits=self._changed_waits(series))
        valid = form.is_valid()
        version = services.series_publish(
            workspace=self.workspace,
            series_id=series.pk,
            move_waiting=valid and form.cleaned_data["move_waiting"],
            move_steps=form.move_steps() if valid else None,
            user=request_user(request),
        )
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
