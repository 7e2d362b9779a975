"""The Overview report: one period's figures against the period before, over time, and the
broadcasts and series behind them. Built from the rollups only (analytics.selectors); the
page, its CSV files and the API all read this one object."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from analytics import selectors
from analytics.kpis import COUNTER_NAMES, COUNTERS, RATES, Totals, change
from analytics.periods import Period
from campaigns.models import SourceKind
from esp.models import Workspace


@dataclass(frozen=True)
class Overview:
    period: Period
    totals: Totals
    previous: Totals
    timeline: list[tuple[dt.date, Totals]]
    broadcasts: list[selectors.SourceFigures]
    series: list[selectors.SourceFigures]
    refreshed_at: dt.datetime | None

    def timeline_points(self) -> list[dict[str, Any]]:
        return [{"date": day, "figures": totals} for day, totals in self.timeline]

    def counter_changes(self) -> dict[str, float | None]:
        """Each counter's relative change from the previous period."""
        return {name: change(getattr(self.totals, name), getattr(self.previous, name)) for name in COUNTER_NAMES}

    def rate_changes(self) -> dict[str, float | None]:
        """Each rate's change in percentage points (as a fraction: 0.012 = +1.2 pp)."""
        now, before = self.totals.rates(), self.previous.rates()
        return {
            name: None if now[name] is None or before[name] is None else now[name] - before[name]  # type: ignore[operator]
            for name in now
        }


def overview_build(*, workspace: Workspace, period: Period) -> Overview:
    previous = (
        selectors.totals(workspace=workspace, start=period.previous_start, end=period.previous_end)
        if period.previous_start and period.previous_end
        else Totals()
    )
    return Overview(
        period=period,
        totals=selectors.totals(workspace=workspace, start=period.start, end=period.end),
        previous=previous,
        timeline=selectors.timeline(workspace=workspace, start=period.start, end=period.end, grain=period.grain),
        broadcasts=selectors.top_sources(
            workspace=workspace, kind=SourceKind.BROADCAST, start=period.start, end=period.end
        ),
        series=selectors.top_sources(workspace=workspace, kind=SourceKind.STEP, start=period.start, end=period.end),
        refreshed_at=selectors.refreshed_at(),
    )


# --- the tables, as rows of plain values (the CSV files; the page formats the same values) ---

TABLES = ("summary", "timeline", "broadcasts", "series")


def _rate_cell(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def table_rows(overview: Overview, table: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one of the report's tables (rates in percent, two decimals)."""
    if table == "summary":
        header = ["measure", "period", "previous_period", "change_percent"]
        rows: list[list[Any]] = []
        changes = overview.counter_changes()
        for counter in COUNTERS:
            name = counter.name
            rows.append(
                [name, getattr(overview.totals, name), getattr(overview.previous, name), _rate_cell(changes[name])]
            )
        now, before = overview.totals.rates(), overview.previous.rates()
        for rate in RATES:
            difference = overview.rate_changes()[rate.name]
            rows.append([f"{rate.name}_percent", _rate_cell(now[rate.name]), _rate_cell(before[rate.name]),
                         _rate_cell(difference)])  # fmt: skip
        return header, rows
    rate_names = [rate.name for rate in RATES]
    header = [*COUNTER_NAMES, *(f"{name}_percent" for name in rate_names)]

    def figures(totals: Totals) -> list[Any]:
        rates = totals.rates()
        return [*(getattr(totals, name) for name in COUNTER_NAMES), *(_rate_cell(rates[name]) for name in rate_names)]

    if table == "timeline":
        return ["date", *header], [[day.isoformat(), *figures(totals)] for day, totals in overview.timeline]
    sources = overview.broadcasts if table == "broadcasts" else overview.series
    return ["id", "name", *header], [[s.object_id, s.name, *figures(s.totals)] for s in sources]
