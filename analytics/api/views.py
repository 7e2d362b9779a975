"""The reports API (scope reports:read): the Overview of a period, and one broadcast's or
series' figures, for BI tools. Read from the rollups, as the pages are."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.api import serializers as s
from analytics.lift import series_lift
from analytics.overview import overview_build
from analytics.periods import period_make
from analytics.source_reports import default_period, source_of, source_report_build
from automations.models import Series
from campaigns.models import Broadcast, EmailTemplate
from esp.api.views import WorkspaceAPIView
from esp.models import ApiScope


class ReportAPIView(WorkspaceAPIView):
    read_scope = ApiScope.REPORTS_READ


class OverviewView(ReportAPIView):
    @extend_schema(
        operation_id="reports_overview",
        summary="A period's figures against the period before, over time, with the top broadcasts and series",
        description=(
            "Messages sent from `from` to `to` (days in the workspace's zone) and everything that happened to "
            "them since, from the report rollups (fresh within a minute). Every figure counts messages at most "
            "once; machine opens and scanner clicks are never opens or clicks. The previous period is as long, "
            "right before."
        ),
        parameters=[s.PeriodQuerySerializer],
        responses={200: s.OverviewSerializer},
    )
    def get(self, request: Request) -> Response:
        query = s.PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data: dict[str, Any] = query.validated_data
        today = timezone.now().astimezone(self.workspace.zone).date()
        start, end = data.get("from"), data.get("to")
        try:
            period = period_make(
                today=today,
                kind="custom",
                start=start or ((end or today) - dt.timedelta(days=29)),
                end=end,
                grain=data.get("grain", ""),
            )
        except ValidationError as error:
            raise exceptions.ValidationError(error.message_dict) from None
        return Response(s.OverviewSerializer(overview_build(workspace=self.workspace, period=period)).data)


def _source_body(view: ReportAPIView, request: Request, kind: str, obj: Any) -> dict[str, Any]:
    """One broadcast's, series' or template's figures: of the period ?from=&to= names, else of
    all its days; a series' steps and lift too."""
    query = s.SourceQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    data: dict[str, Any] = query.validated_data
    workspace = view.workspace
    today = timezone.now().astimezone(workspace.zone).date()
    period = None
    if data.get("from") or data.get("to"):
        end = data.get("to")
        try:
            period = period_make(
                today=today, kind="custom", start=data.get("from") or ((end or today) - dt.timedelta(days=29)), end=end
            )
        except ValidationError as error:
            raise exceptions.ValidationError(error.message_dict) from None
    body: dict[str, Any] = {"id": obj.pk, "name": obj.name, "period": period}
    if period is not None:
        report = source_report_build(workspace=workspace, kind=kind, obj=obj, period=period)
        body["figures"] = report.totals
        if kind == "series":
            body["steps"] = [{"step_key": step.key, "figures": step.totals} for step in report.steps]
            body["lift"] = report.lift
        return body
    source = source_of(kind, obj.pk)
    if kind == "template":
        body["figures"] = selectors.source_period_totals(
            workspace=workspace, source=source, start=dt.date(1970, 1, 1), end=dt.date(9999, 12, 31)
        )
    else:
        body["figures"] = selectors.source_totals(workspace=workspace, kind=source.kind, object_id=obj.pk)
    if kind == "series":
        steps = selectors.series_step_totals(workspace=workspace, series_id=obj.pk)
        body["steps"] = [{"step_key": key, "figures": totals} for key, totals in steps.items()]
        whole = default_period(workspace=workspace, kind=kind, pk=obj.pk, today=today)
        body["lift"] = series_lift(workspace=workspace, series=obj, start=whole.start, end=whole.end) if whole else None
    return body


_SOURCE_DESCRIPTION = (
    "Its messages sent from `from` to `to` (days in the workspace's zone), or on all its days without them, "
    "and everything that happened to them since, from the report rollups. Money is last-touch attribution "
    "within the workspace's windows, on the day the attributed message went out."
)


class BroadcastReportView(ReportAPIView):
    @extend_schema(
        operation_id="reports_broadcast",
        summary="One broadcast's figures and money, over a period or all its days",
        description=_SOURCE_DESCRIPTION,
        parameters=[s.SourceQuerySerializer],
        responses={200: s.SourceReportSerializer, 404: OpenApiResponse(description="No such broadcast.")},
    )
    def get(self, request: Request, broadcast_id: int) -> Response:
        broadcast = Broadcast.objects.in_workspace(self.workspace).filter(pk=broadcast_id).first()
        if broadcast is None:
            raise exceptions.NotFound(_("No such broadcast in this workspace."))
        return Response(s.SourceReportSerializer(_source_body(self, request, "broadcast", broadcast)).data)


class SeriesReportView(ReportAPIView):
    @extend_schema(
        operation_id="reports_series",
        summary="One series' figures and money, each email step's, and its holdout lift",
        description=_SOURCE_DESCRIPTION
        + " The lift compares the contacts who entered in the period (all its days without one) with those "
        "it held out: orders after entering, attributed or not, with 95 % confidence intervals.",
        parameters=[s.SourceQuerySerializer],
        responses={200: s.SourceReportSerializer, 404: OpenApiResponse(description="No such series.")},
    )
    def get(self, request: Request, series_id: int) -> Response:
        series = Series.objects.in_workspace(self.workspace).filter(pk=series_id).first()
        if series is None:
            raise exceptions.NotFound(_("No such series in this workspace."))
        return Response(s.SourceReportSerializer(_source_body(self, request, "series", series)).data)


class TemplateReportView(ReportAPIView):
    @extend_schema(
        operation_id="reports_template",
        summary="One email template's figures and money (its messages of every kind)",
        description=_SOURCE_DESCRIPTION,
        parameters=[s.SourceQuerySerializer],
        responses={200: s.SourceReportSerializer, 404: OpenApiResponse(description="No such template.")},
    )
    def get(self, request: Request, template_id: int) -> Response:
        template = EmailTemplate.objects.in_workspace(self.workspace).filter(pk=template_id).first()
        if template is None:
            raise exceptions.NotFound(_("No such template in this workspace."))
        return Response(s.SourceReportSerializer(_source_body(self, request, "template", template)).data)
