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
from analytics.overview import overview_build
from analytics.periods import period_make
from automations.models import Series
from campaigns.models import Broadcast, SourceKind
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


def _figures_of(workspace: Any, kind: str, object_id: int) -> dict[str, Any]:
    return {"figures": selectors.source_totals(workspace=workspace, kind=kind, object_id=object_id)}


class BroadcastReportView(ReportAPIView):
    @extend_schema(
        operation_id="reports_broadcast",
        summary="One broadcast's figures, all its days",
        responses={200: s.SourceReportSerializer, 404: OpenApiResponse(description="No such broadcast.")},
    )
    def get(self, request: Request, broadcast_id: int) -> Response:
        broadcast = Broadcast.objects.in_workspace(self.workspace).filter(pk=broadcast_id).first()
        if broadcast is None:
            raise exceptions.NotFound(_("No such broadcast in this workspace."))
        body = {
            "id": broadcast.pk,
            "name": broadcast.name,
            **_figures_of(self.workspace, SourceKind.BROADCAST, broadcast.pk),
        }
        return Response(s.SourceReportSerializer(body).data)


class SeriesReportView(ReportAPIView):
    @extend_schema(
        operation_id="reports_series",
        summary="One series' figures, all its days, and each email step's",
        responses={200: s.SourceReportSerializer, 404: OpenApiResponse(description="No such series.")},
    )
    def get(self, request: Request, series_id: int) -> Response:
        series = Series.objects.in_workspace(self.workspace).filter(pk=series_id).first()
        if series is None:
            raise exceptions.NotFound(_("No such series in this workspace."))
        steps = selectors.series_step_totals(workspace=self.workspace, series_id=series.pk)
        body = {
            "id": series.pk,
            "name": series.name,
            **_figures_of(self.workspace, SourceKind.STEP, series.pk),
            "steps": [{"step_key": key, "figures": totals} for key, totals in steps.items()],
        }
        return Response(s.SourceReportSerializer(body).data)
