"""The RFM and lifecycle pages: the RFM grid and named segments (a click makes a segment of a
cell), the scoring job's state and button, lifecycle stage counts and the workspace's
thresholds. Logic is in audiences.facts (scores, thresholds) and audiences.insights.selectors (reads)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences import facts
from audiences.insights import selectors as insights
from audiences.insights import services as insight_services
from audiences.models import LifecycleSettings, LifecycleStage, RfmSegment, Segment
from esp.forms import add_service_errors
from esp.models import Role
from esp.web import WorkspaceView


def _to_segment(segment: Segment) -> HttpResponse:
    return redirect("segment", segment_id=segment.pk)


def _score(value: str) -> int | None:
    return int(value) if value in {"1", "2", "3", "4", "5"} else None


def _segment_error(request: HttpRequest, error: ValidationError, back: str) -> HttpResponse:
    for message in error.messages:
        messages.error(request, message)
    return redirect(back)


class RfmView(WorkspaceView):
    """The grid (recency × frequency) and the named segments; POST queues a scoring run."""

    def get(self, request: HttpRequest) -> HttpResponse:
        status = facts.scoring_status(workspace_id=self.workspace.pk)
        context = {
            "overview": insights.rfm_overview(workspace=self.workspace),
            "status": status,
            "scores": insights.SCORES,
        }
        return render(request, "audiences/rfm.html", context)

    def post(self, request: HttpRequest) -> HttpResponse:
        if facts.scoring_request(workspace_id=self.workspace.pk):
            messages.success(request, _("Scoring queued. This page updates when it is done."))
        else:
            messages.warning(request, _("Scoring is already queued or running."))
        return redirect("rfm")


class RfmSegmentView(WorkspaceView):
    """A grid cell (recency + frequency) or a named segment → its segment, made or opened."""

    def post(self, request: HttpRequest) -> HttpResponse:
        recency, frequency = _score(request.POST.get("recency", "")), _score(request.POST.get("frequency", ""))
        named = request.POST.get("segment", "")
        try:
            if named:
                if named not in RfmSegment.values:
                    raise ValidationError(_("Unknown RFM segment."))
                segment = insight_services.rfm_named_segment(workspace=self.workspace, segment=named)
            elif recency is not None and frequency is not None:
                segment = insight_services.rfm_cell_segment(
                    workspace=self.workspace, recency=recency, frequency=frequency
                )
            else:
                raise ValidationError(_("Choose a cell of the grid or a named segment."))
        except ValidationError as error:
            return _segment_error(request, error, "rfm")
        return _to_segment(segment)


class LifecycleSettingsForm(forms.Form):
    loyal_min_orders = forms.IntegerField(
        label=gettext_lazy("Orders to count as loyal"),
        min_value=2,
        max_value=1000,
        initial=facts.DEFAULT_LOYAL_MIN_ORDERS,
    )
    at_risk_after_days = forms.IntegerField(
        label=gettext_lazy("At risk after days without an order"),
        min_value=1,
        max_value=3650,
        required=False,
        help_text=gettext_lazy("Empty: derived from this workspace's median days between orders."),
    )
    lapsed_after_days = forms.IntegerField(
        label=gettext_lazy("Lapsed after days without an order"),
        min_value=1,
        max_value=3650,
        required=False,
        help_text=gettext_lazy("Empty: twice the at-risk threshold."),
    )

    def __init__(self, *args: object, thresholds: facts.LifecycleThresholds, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["at_risk_after_days"].widget.attrs["placeholder"] = str(thresholds.derived_at_risk_after_days)
        self.fields["lapsed_after_days"].widget.attrs["placeholder"] = str(thresholds.lapsed_after_days)


class LifecycleView(WorkspaceView):
    """Contacts per lifecycle stage, the workspace median interval and the thresholds (marketers
    and owners change them)."""

    def _render(
        self, request: HttpRequest, form: LifecycleSettingsForm | None = None, status: int = 200
    ) -> HttpResponse:
        # The median and the counts as the scoring job stored them: computing them here took
        # hundreds of milliseconds per load at a million contacts.
        figures = insights.insight_figures(workspace=self.workspace)
        interval = (
            facts.WorkspaceInterval(median_days=figures.median_days, repeat_customers=figures.repeat_customers)
            if figures
            else None
        )
        thresholds = facts.lifecycle_thresholds(workspace_id=self.workspace.pk, interval=interval)
        if form is None:
            saved = LifecycleSettings.objects.filter(workspace=self.workspace).first()
            initial = {
                "loyal_min_orders": thresholds.loyal_min_orders,
                "at_risk_after_days": saved.at_risk_after_days if saved else None,
                "lapsed_after_days": saved.lapsed_after_days if saved else None,
            }
            form = LifecycleSettingsForm(initial=initial, thresholds=thresholds)
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        stages = insights.lifecycle_counts(workspace=self.workspace)
        context = {
            "stages": stages,
            "chart": {"labels": [s.label for s in stages], "counts": [s.count for s in stages]},
            "thresholds": thresholds,
            "form": form,
            "figures": figures,
            "status": facts.scoring_status(workspace_id=self.workspace.pk),
        }
        return render(request, "audiences/lifecycle.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        if "recount" in request.POST:
            if facts.scoring_request(workspace_id=self.workspace.pk):
                messages.success(request, _("Recount queued. This page updates when it is done."))
            else:
                messages.warning(request, _("Scoring is already queued or running."))
            return redirect("lifecycle")
        thresholds = facts.lifecycle_thresholds(workspace_id=self.workspace.pk)
        form = LifecycleSettingsForm(request.POST, thresholds=thresholds)
        if not form.is_valid():
            return self._render(request, form, status=400)
        try:
            facts.lifecycle_settings_save(workspace=self.workspace, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
            return self._render(request, form, status=400)
        messages.success(request, _("Thresholds saved. Stages are being recomputed."))
        return redirect("lifecycle")


class LifecycleSegmentView(WorkspaceView):
    """A lifecycle stage → its segment, made or opened."""

    def post(self, request: HttpRequest) -> HttpResponse:
        stage = request.POST.get("stage", "")
        try:
            if stage not in LifecycleStage.values:
                raise ValidationError(_("Unknown lifecycle stage."))
            segment = insight_services.lifecycle_stage_segment(workspace=self.workspace, stage=stage)
        except ValidationError as error:
            return _segment_error(request, error, "lifecycle")
        return _to_segment(segment)
