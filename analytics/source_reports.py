"""The report of one broadcast, one series (and each of its email steps) or one template: the
figures of analytics.kpis, money included, of its messages sent in a period, against the
period before, over time; a series with a holdout adds its lift (analytics.lift). Read from
the rollups (the lift from the series' enrollments); the page, its CSV files and the API all
read this one object."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, Min
from django.utils.translation import gettext as _

from analytics import selectors
from analytics.kpis import COUNTERS, MONEY, RATES, Totals, change
from analytics.lift import Lift, series_lift
from analytics.models import DailyRollup
from analytics.overview import _cell, _rate_cell, figure_columns
from analytics.periods import MAX_DAYS, Period, default_grain
from automations.models import Series
from campaigns.models import Broadcast, EmailTemplate, SourceKind
from esp.models import Workspace

KINDS = ("broadcast", "series", "template")
TABLES = ("summary", "timeline", "steps")


@dataclass(frozen=True)
class StepFigures:
    key: str
    kind: str
    totals: Totals


@dataclass(frozen=True)
class SourceReport:
    kind: str  # "broadcast", "series" or "template"
    object: Broadcast | Series | EmailTemplate
    period: Period
    totals: Totals
    previous: Totals
    timeline: list[tuple[dt.date, Totals]]
    steps: list[StepFigures] = field(default_factory=list)
    lift: Lift | None = None

    @property
    def name(self) -> str:
        return str(self.object.name)

    def timeline_points(self) -> list[dict[str, Any]]:
        return [{"date": day, "figures": totals} for day, totals in self.timeline]

    def changes(self) -> dict[str, float | None]:
        """Counters' and money's relative change; rates' change in points (as a fraction)."""
        found: dict[str, float | None] = {}
        for counter in COUNTERS:
            found[counter.name] = change(getattr(self.totals, counter.name), getattr(self.previous, counter.name))
        now, before = self.totals.rates(), self.previous.rates()
        for rate in RATES:
            a, b = now[rate.name], before[rate.name]
            found[rate.name] = None if a is None or b is None else a - b
        money, money_before = self.totals.money(), self.previous.money()
        for measure in MONEY:
            found[measure.name] = change(money[measure.name], money_before[measure.name])
        return found


def source_of(kind: str, pk: int) -> selectors.Source:
    return selectors.Source(
        {"broadcast": SourceKind.BROADCAST, "series": SourceKind.STEP, "template": "template"}[kind], pk
    )


def default_period(*, workspace: Workspace, kind: str, pk: int, today: dt.date) -> Period | None:
    """All the days the source sent on (up to today, three years at most); None when it never
    sent (the page then shows the last 30 days)."""
    rows = source_of(kind, pk).filter(DailyRollup.objects.filter(workspace=workspace))
    span = rows.aggregate(first=Min("day"), last=Max("day"))
    if span["first"] is None:
        return None
    end = max(span["last"], min(today, span["last"] + dt.timedelta(days=30)))
    start = max(span["first"], end - dt.timedelta(days=MAX_DAYS - 1))
    days = (end - start).days + 1
    return Period(
        start, end, default_grain(days), "custom", start - dt.timedelta(days=days), start - dt.timedelta(days=1)
    )


def _step_kinds(series: Series) -> list[tuple[str, str]]:
    """The live version's steps, top to bottom: (key, kind)."""
    version = series.live_version
    steps = (version.steps if version else {}) or {}
    return [(str(s.get("key", "")), str(s.get("type", ""))) for s in steps.get("steps", []) if isinstance(s, dict)]


def source_report_build(
    *, workspace: Workspace, kind: str, obj: Broadcast | Series | EmailTemplate, period: Period
) -> SourceReport:
    source = source_of(kind, obj.pk)
    previous = (
        selectors.source_period_totals(
            workspace=workspace, source=source, start=period.previous_start, end=period.previous_end
        )
        if period.previous_start and period.previous_end
        else Totals()
    )
    steps: list[StepFigures] = []
    lift = None
    if isinstance(obj, Series):
        found = selectors.source_step_totals(workspace=workspace, series_id=obj.pk, start=period.start, end=period.end)
        ordered = _step_kinds(obj)
        known = {key for key, _kind in ordered}
        for key, step_kind in ordered:
            if step_kind == "send" or key in found:
                steps.append(StepFigures(key, step_kind, found.get(key, Totals())))
        # Steps an older version had: still theirs, after the live ones.
        steps += [StepFigures(key, "", totals) for key, totals in found.items() if key not in known]
        lift = series_lift(workspace=workspace, series=obj, start=period.start, end=period.end)
    return SourceReport(
        kind=kind,
        object=obj,
        period=period,
        totals=selectors.source_period_totals(workspace=workspace, source=source, start=period.start, end=period.end),
        previous=previous,
        timeline=selectors.timeline(
            workspace=workspace, start=period.start, end=period.end, grain=period.grain, source=source
        ),
        steps=steps,
        lift=lift,
    )


def table_rows(report: SourceReport, table: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one of the report's tables (rates in percent, two decimals)."""
    header, figures = figure_columns()
    if table == "summary":
        names = header
        now, before = figures(report.totals), figures(report.previous)
        rows = [[name, a, b] for name, a, b in zip(names, now, before, strict=True)]
        if report.lift is not None:
            lift = report.lift
            conversion, revenue = lift.conversion, lift.revenue
            rows += [
                ["entrants", lift.entrants.contacts, ""],
                ["entrants_conversion_rate_percent", _rate_cell(lift.entrants.conversion_rate), ""],
                ["entrants_revenue_per_contact", _cell(lift.entrants.revenue_per_contact), ""],
                ["holdout", lift.holdout.contacts, ""],
                ["holdout_conversion_rate_percent", _rate_cell(lift.holdout.conversion_rate), ""],
                ["holdout_revenue_per_contact", _cell(lift.holdout.revenue_per_contact), ""],
            ]
            if conversion is not None and revenue is not None:
                rows += [
                    ["lift_conversion_rate_points", _rate_cell(conversion.difference), ""],
                    ["lift_conversion_rate_ci95_low", _rate_cell(conversion.low), ""],
                    ["lift_conversion_rate_ci95_high", _rate_cell(conversion.high), ""],
                    ["lift_significant", str(conversion.significant).lower(), ""],
                    ["lift_revenue_per_contact", f"{revenue.difference:.2f}", ""],
                    ["lift_revenue_per_contact_ci95_low", f"{revenue.low:.2f}", ""],
                    ["lift_revenue_per_contact_ci95_high", f"{revenue.high:.2f}", ""],
                ]
        return ["measure", "period", "previous_period"], rows
    if table == "timeline":
        return ["date", *header], [[day.isoformat(), *figures(totals)] for day, totals in report.timeline]
    return ["step_key", *header], [[step.key, *figures(step.totals)] for step in report.steps]


def kind_label(kind: str) -> str:
    return {"broadcast": _("Broadcast"), "series": _("Series"), "template": _("Email template")}[kind]
