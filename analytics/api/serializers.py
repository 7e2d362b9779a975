"""Serializers of the reports API: the figures of analytics.kpis, one field per counter and
rate (their definitions are the fields' descriptions in the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.kpis import COUNTERS, RATES, Totals
from analytics.selectors import GRAINS


class PeriodQuerySerializer(serializers.Serializer[dict[str, Any]]):
    """?from=&to=&grain= — days in the workspace's zone."""

    vars()["from"] = serializers.DateField(
        required=False, help_text="First day (YYYY-MM-DD), in the workspace's zone. Default: 29 days before `to`."
    )
    to = serializers.DateField(required=False, help_text="Last day (YYYY-MM-DD). Default: today.")
    grain = serializers.ChoiceField(
        choices=list(GRAINS), required=False, help_text="Buckets of the timeline. Default: by the period's length."
    )


def _counter_fields() -> dict[str, serializers.Field[Any, Any, Any, Any]]:
    return {c.name: serializers.IntegerField(help_text=str(c.doc)) for c in COUNTERS}


def _rate_fields() -> dict[str, serializers.Field[Any, Any, Any, Any]]:
    return {
        r.name: serializers.FloatField(allow_null=True, help_text=f"{r.doc} A fraction (0.25 = 25 %).") for r in RATES
    }


CountersSerializer = type("ReportCounters", (serializers.Serializer,), _counter_fields())
RatesSerializer = type("ReportRates", (serializers.Serializer,), _rate_fields())
RateChangesSerializer = type(
    "ReportRateChanges",
    (serializers.Serializer,),
    {r.name: serializers.FloatField(allow_null=True, help_text="Change in percentage points, as a fraction.")
     for r in RATES},
)  # fmt: skip
CounterChangesSerializer = type(
    "ReportCounterChanges",
    (serializers.Serializer,),
    {c.name: serializers.FloatField(allow_null=True, help_text="Relative change (0.1 = +10 %); null without a base.")
     for c in COUNTERS},
)  # fmt: skip


class FiguresSerializer(serializers.Serializer[Totals]):
    counters = CountersSerializer(source="*")
    rates = RatesSerializer(help_text="Each rate as a fraction; null where its base is zero.")
    rate_base = serializers.ChoiceField(
        choices=["delivered", "sent"], help_text="What the rates are over: delivered, or sent when none is reported."
    )


class TimelinePointSerializer(serializers.Serializer[Any]):
    date = serializers.DateField(help_text="The day, or the first day of the week (Monday) or month.")
    figures = FiguresSerializer()


class SourceFiguresSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="object_id")
    name = serializers.CharField()
    figures = FiguresSerializer(source="totals")


class PeriodSerializer(serializers.Serializer[Any]):
    vars()["from"] = serializers.DateField(source="start")
    to = serializers.DateField(source="end")
    previous_from = serializers.DateField(source="previous_start")
    previous_to = serializers.DateField(source="previous_end")
    grain = serializers.CharField()


class OverviewSerializer(serializers.Serializer[Any]):
    period = PeriodSerializer()
    figures = FiguresSerializer(source="totals")
    previous = FiguresSerializer()
    counter_changes = CounterChangesSerializer()
    rate_changes = RateChangesSerializer()
    timeline = TimelinePointSerializer(many=True, source="timeline_points")
    top_broadcasts = SourceFiguresSerializer(many=True, source="broadcasts")
    top_series = SourceFiguresSerializer(many=True, source="series")


class StepFiguresSerializer(serializers.Serializer[Any]):
    step_key = serializers.CharField()
    figures = FiguresSerializer()


class SourceReportSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    figures = FiguresSerializer()
    steps = StepFiguresSerializer(many=True, required=False)
