"""The journey, cohort, goal and deliverability reports as JSON (scope reports:read), read
from the same rollups and report objects as the pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import deliverability as dl
from analytics.api.serializers import PeriodQuerySerializer
from analytics.api.views import ReportAPIView
from analytics.goals.services import goals_progress, progress_row
from analytics.journey import STAGES
from analytics.journey_forms import MonthRangeForm
from analytics.journey_report import cohorts_report, journey_report
from analytics.periods import period_make
from esp.api.strict import QueryParameters


class MonthQuerySerializer(QueryParameters):
    vars()["from"] = serializers.CharField(
        required=False, help_text="First month, YYYY-MM. Default: 11 months before `to`."
    )
    to = serializers.CharField(required=False, help_text="Last month, YYYY-MM. Default: this month (workspace zone).")


class JourneyMonthSerializer(serializers.Serializer[Any]):
    month = serializers.DateField()
    stages = serializers.DictField(
        child=serializers.IntegerField(), help_text=f"Contacts per stage: {', '.join(STAGES)}."
    )
    rfm = serializers.DictField(
        child=serializers.IntegerField(), help_text="Customers per RFM segment (nightly scoring)."
    )
    arrived = serializers.IntegerField(help_text="Contacts who arrived in the month.")
    first_orders_of_new = serializers.IntegerField(help_text="Of them, those whose first order came in the month.")
    first_order_rate = serializers.FloatField(allow_null=True, help_text="first_orders_of_new ÷ arrived.")
    ordering = serializers.IntegerField(help_text="Customers who ordered in the month.")
    returning = serializers.IntegerField(help_text="Of them, those who had ordered before.")
    repeat_rate = serializers.FloatField(allow_null=True, help_text="returning ÷ ordering.")
    orders = serializers.IntegerField()
    churned = serializers.IntegerField(help_text="Unsubscribes, hard bounces and complaints of the month.")
    audience = serializers.IntegerField(help_text="Contacts at the month's start plus arrivals.")
    churn_rate = serializers.FloatField(allow_null=True, help_text="churned ÷ audience.")


class FlowSerializer(serializers.Serializer[Any]):
    month = serializers.DateField()
    vars()["from"] = serializers.CharField(help_text="Stage at the end of the month before, or `new`.")
    to = serializers.CharField(help_text="Stage at the end of the month.")
    contacts = serializers.IntegerField()


class ListGrowthSerializer(serializers.Serializer[Any]):
    list_id = serializers.IntegerField()
    name = serializers.CharField()
    months = serializers.ListField(
        child=serializers.DictField(), help_text="[{month, new, confirmed, unsubscribed, net}] month by month."
    )


class JourneySerializer(serializers.Serializer[Any]):
    months = JourneyMonthSerializer(many=True)
    flows = FlowSerializer(many=True)
    lists = ListGrowthSerializer(many=True)


class CohortMonthSerializer(serializers.Serializer[Any]):
    offset = serializers.IntegerField(help_text="Months since the first order.")
    active = serializers.IntegerField()
    retention = serializers.FloatField(allow_null=True)
    ltv = serializers.DecimalField(
        max_digits=16, decimal_places=2, allow_null=True, help_text="Cumulative revenue per customer."
    )
    repeat_rate = serializers.FloatField(allow_null=True)


class CohortSerializer(serializers.Serializer[Any]):
    cohort = serializers.DateField(help_text="First day of the month of the first order.")
    customers = serializers.IntegerField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    aov = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    repeat_rate = serializers.FloatField(allow_null=True)
    cells = CohortMonthSerializer(many=True)


class CohortsSerializer(serializers.Serializer[Any]):
    cohorts = CohortSerializer(many=True)


class GoalSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kpi = serializers.CharField()
    target_kind = serializers.CharField()
    target_value = serializers.FloatField()
    start = serializers.DateField()
    end = serializers.DateField()
    segment = serializers.CharField(allow_null=True)
    baseline = serializers.FloatField(allow_null=True, help_text="The same period last year (growth targets).")
    target = serializers.FloatField(allow_null=True, help_text="The target as the figure is (a rate as a fraction).")
    current = serializers.FloatField(allow_null=True)
    progress = serializers.FloatField(allow_null=True)
    forecast = serializers.FloatField(allow_null=True, help_text="Linear over the period so far.")
    needed = serializers.FloatField(
        allow_null=True, help_text="Per remaining day (counts), or the rate the rest needs."
    )
    current_pace = serializers.FloatField(allow_null=True)
    elapsed_days = serializers.IntegerField()
    total_days = serializers.IntegerField()
    on_track = serializers.BooleanField(allow_null=True)
    reached = serializers.BooleanField(allow_null=True)


class GoalsSerializer(serializers.Serializer[Any]):
    goals = GoalSerializer(many=True)


class ProviderSerializer(serializers.Serializer[Any]):
    provider = serializers.CharField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    bounced = serializers.IntegerField()
    bounced_hard = serializers.IntegerField()
    complained = serializers.IntegerField()
    bounce_rate = serializers.FloatField(allow_null=True)
    complaint_rate = serializers.FloatField(allow_null=True)
    complaint_level = serializers.CharField(help_text="'', 'warning' (≥ 0.10 %) or 'danger' (≥ 0.30 %).")
    bounce_level = serializers.CharField(help_text="'' or 'warning' (hard bounces ≥ 2 %).")


class DeliverabilitySerializer(serializers.Serializer[Any]):
    providers = ProviderSerializer(many=True)
    total = ProviderSerializer()


def _months(view: ReportAPIView, request: Request) -> tuple[dt.date, dt.date]:
    MonthQuerySerializer(data=request.query_params).is_valid(raise_exception=True)  # `?to=` refused
    form = MonthRangeForm(request.query_params)
    span = form.months_for(today=timezone.now().astimezone(view.workspace.zone).date())
    if span is None:
        raise exceptions.ValidationError({k: [str(m) for m in v] for k, v in form.errors.items()})
    return span


class JourneyView(ReportAPIView):
    @extend_schema(
        operation_id="reports_journey",
        summary="Contacts per lifecycle stage and RFM segment month by month, the flow between stages, list growth",
        parameters=[MonthQuerySerializer],
        responses={200: JourneySerializer},
    )
    def get(self, request: Request) -> Response:
        report = journey_report(workspace=self.workspace, first=(span := _months(self, request))[0], last=span[1])
        body = {
            "months": [
                {**m.__dict__, "first_order_rate": m.first_order_rate, "repeat_rate": m.repeat_rate,
                 "churn_rate": m.churn_rate}
                for m in report.months
            ],
            "flows": [{"month": m, "from": s, "to": t, "contacts": n} for m, s, t, n in report.flows],
            "lists": [
                {"list_id": g.list_id, "name": g.name,
                 "months": [{"month": mo.isoformat(), "new": a, "confirmed": b, "unsubscribed": c, "net": d}
                            for mo, a, b, c, d in g.months]}
                for g in report.lists
            ],
        }  # fmt: skip
        return Response(JourneySerializer(body).data)


class CohortsView(ReportAPIView):
    @extend_schema(
        operation_id="reports_cohorts",
        summary="Retention, cumulative revenue per customer (LTV), AOV and repeat rate by month of first order",
        parameters=[MonthQuerySerializer],
        responses={200: CohortsSerializer},
    )
    def get(self, request: Request) -> Response:
        first, last = _months(self, request)
        cohorts = cohorts_report(workspace=self.workspace, first=first, last=last)
        body = {
            "cohorts": [
                {"cohort": c.cohort, "customers": c.customers, "orders": c.orders, "revenue": c.revenue,
                 "aov": c.aov, "repeat_rate": c.repeat_rate, "cells": [x.__dict__ for x in c.cells]}
                for c in cohorts
            ]
        }  # fmt: skip
        return Response(CohortsSerializer(body).data)


class GoalsView(ReportAPIView):
    @extend_schema(
        operation_id="reports_goals",
        summary="Every goal with its progress, the pace needed and a linear forecast",
        responses={200: GoalsSerializer},
    )
    def get(self, request: Request) -> Response:
        rows = [progress_row(item) for item in goals_progress(workspace=self.workspace)]
        return Response(GoalsSerializer({"goals": rows}).data)


def _provider(item: dl.ProviderFigures) -> dict[str, Any]:
    t = item.totals
    return {"provider": item.provider, "sent": t.sent, "delivered": t.delivered, "bounced": t.bounced,
            "bounced_hard": t.bounced_hard, "complained": t.complained, "bounce_rate": t.bounce_rate,
            "complaint_rate": t.complaint_rate, "complaint_level": item.complaint_level,
            "bounce_level": item.bounce_level}  # fmt: skip


class DeliverabilityView(ReportAPIView):
    @extend_schema(
        operation_id="reports_deliverability",
        summary="Bounce and complaint rates per mailbox provider against the Gmail / Yahoo thresholds",
        parameters=[PeriodQuerySerializer],
        responses={200: DeliverabilitySerializer},
    )
    def get(self, request: Request) -> Response:
        query = PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data: dict[str, Any] = query.validated_data
        today = timezone.now().astimezone(self.workspace.zone).date()
        end = data.get("to")
        try:
            period = period_make(
                today=today, kind="custom", start=data.get("from") or ((end or today) - dt.timedelta(days=29)), end=end
            )
        except ValidationError as error:
            raise exceptions.ValidationError(error.message_dict) from None
        items = dl.by_provider(workspace=self.workspace, start=period.start, end=period.end)
        body = {"providers": [_provider(i) for i in items], "total": _provider(dl.total_of(items))}
        return Response(DeliverabilitySerializer(body).data)
