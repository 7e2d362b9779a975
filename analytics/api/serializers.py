"""Serializers of the reports API: the figures of analytics.kpis, one field per counter and
rate (their definitions are the fields' descriptions in the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.kpis import COUNTERS, MONEY, RATES, SHOP, Totals
from analytics.selectors import GRAINS
from esp.api.strict import QueryParameters


class PeriodQuerySerializer(QueryParameters):
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


class MoneySerializer(serializers.Serializer[Totals]):
    conversions = serializers.IntegerField(help_text=str(MONEY[0].doc))
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, help_text=f"{MONEY[1].doc} Workspace currency.")
    revenue_per_recipient = serializers.DecimalField(
        max_digits=16, decimal_places=4, allow_null=True, help_text=f"{MONEY[2].doc} Null without a base."
    )
    average_order_value = serializers.DecimalField(
        max_digits=16, decimal_places=2, allow_null=True, help_text=f"{MONEY[3].doc} Null without conversions."
    )


class ShopSerializer(serializers.Serializer[Any]):
    orders = serializers.IntegerField(help_text=str(SHOP[0].doc))
    order_revenue = serializers.DecimalField(max_digits=16, decimal_places=2, help_text=str(SHOP[1].doc))
    email_share = serializers.FloatField(allow_null=True, help_text=f"{SHOP[2].doc} A fraction.")


class FiguresSerializer(serializers.Serializer[Totals]):
    counters = CountersSerializer(source="*")
    money = MoneySerializer(source="*", help_text="Last-touch attribution within the workspace's windows.")
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
    top_broadcasts = SourceFiguresSerializer(many=True, source="broadcasts", help_text="By revenue, then sent.")
    top_series = SourceFiguresSerializer(many=True, source="series", help_text="By revenue, then sent.")
    shop = ShopSerializer(source="shop_figures", help_text="Every order placed in the period, attributed or not.")
    previous_shop = ShopSerializer(source="previous_shop_figures")


class StepFiguresSerializer(serializers.Serializer[Any]):
    step_key = serializers.CharField()
    figures = FiguresSerializer()


class LiftGroupSerializer(serializers.Serializer[Any]):
    contacts = serializers.IntegerField(help_text="Contacts whose first entry in the period fell in this group.")
    converted = serializers.IntegerField(help_text="Of them, those who ordered after entering (any order).")
    conversion_rate = serializers.FloatField(allow_null=True)
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    revenue_per_contact = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)


class IntervalSerializer(serializers.Serializer[Any]):
    difference = serializers.FloatField(help_text="Entrants − held out.")
    low = serializers.FloatField(help_text="95 % confidence interval, low end.")
    high = serializers.FloatField(help_text="95 % confidence interval, high end.")
    significant = serializers.BooleanField(help_text="The interval leaves out 0.")


class LiftSerializer(serializers.Serializer[Any]):
    entrants = LiftGroupSerializer()
    holdout = LiftGroupSerializer()
    conversion = IntervalSerializer(
        allow_null=True, help_text="Conversion rate lift (two-proportion normal approximation); null: too few people."
    )
    revenue = IntervalSerializer(allow_null=True, help_text="Revenue per contact lift (normal approximation).")


class SourceReportSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    period = PeriodSerializer(allow_null=True, help_text="Null: all the days it sent on.")
    figures = FiguresSerializer()
    steps = StepFiguresSerializer(many=True, required=False)
    lift = LiftSerializer(
        required=False, allow_null=True, help_text="A series only: entrants against the held out over the period."
    )


class SourceQuerySerializer(QueryParameters):
    """?from=&to= — days in the workspace's zone; without them, all days."""

    vars()["from"] = serializers.DateField(required=False, help_text="First day (YYYY-MM-DD). Default: all days.")
    to = serializers.DateField(required=False, help_text="Last day (YYYY-MM-DD). Default: today.")
