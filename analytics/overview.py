"""The Overview report: one period's figures against the period before, over time, and the
broadcasts and series behind them. Built from the rollups only (analytics.selectors); the
page, its CSV files and the API all read this one object."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from analytics import selectors
from analytics.kpis import COUNTER_NAMES, COUNTERS, MONEY, RATES, SHOP, ShopTotals, Totals, change
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
    shop: ShopTotals = field(default_factory=ShopTotals)
    previous_shop: ShopTotals = field(default_factory=ShopTotals)

    def money_changes(self) -> dict[str, float | None]:
        """Each money figure's relative change from the previous period."""
        now, before = self.totals.money(), self.previous.money()
        return {name: change(now[name], before[name]) for name in now}

    def shop_figures(self, shop: ShopTotals | None = None, totals: Totals | None = None) -> dict[str, Any]:
        shop, totals = shop or self.shop, totals or self.totals
        return {"orders": shop.orders, "order_revenue": shop.revenue, "email_share": shop.email_share(totals.revenue)}

    def previous_shop_figures(self) -> dict[str, Any]:
        return self.shop_figures(self.previous_shop, self.previous)

    def shop_changes(self) -> dict[str, float | None]:
        now, before = self.shop_figures(), self.shop_figures(self.previous_shop, self.previous)
        return {name: change(now[name], before[name]) for name in now}

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
        shop=selectors.shop_totals(workspace=workspace, start=period.start, end=period.end),
        previous_shop=(
            selectors.shop_totals(workspace=workspace, start=period.previous_start, end=period.previous_end)
            if period.previous_start and period.previous_end
            else ShopTotals()
        ),
    )


# --- the tables, as rows of plain values (the CSV files; the page formats the same values) ---

TABLES = ("summary", "timeline", "broadcasts", "series")


def _rate_cell(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def _cell(value: Any) -> Any:
    return "" if value is None else value


MONEY_NAMES = tuple(measure.name for measure in MONEY)


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
        money, money_before, money_changes = (
            overview.totals.money(),
            overview.previous.money(),
            overview.money_changes(),
        )
        for measure in MONEY:
            rows.append([measure.name, _cell(money[measure.name]), _cell(money_before[measure.name]),
                         _rate_cell(money_changes[measure.name])])  # fmt: skip
        shop, shop_before, shop_changes = (
            overview.shop_figures(),
            overview.shop_figures(overview.previous_shop, overview.previous),
            overview.shop_changes(),
        )
        for measure in SHOP:
            if measure.name == "email_share":
                rows.append([f"{measure.name}_percent", _rate_cell(shop[measure.name]),
                             _rate_cell(shop_before[measure.name]), ""])  # fmt: skip
            else:
                rows.append([measure.name, shop[measure.name], shop_before[measure.name],
                             _rate_cell(shop_changes[measure.name])])  # fmt: skip
        return header, rows
    header, figures = figure_columns()

    if table == "timeline":
        return ["date", *header], [[day.isoformat(), *figures(totals)] for day, totals in overview.timeline]
    sources = overview.broadcasts if table == "broadcasts" else overview.series
    return ["id", "name", *header], [[s.object_id, s.name, *figures(s.totals)] for s in sources]


def figure_columns() -> tuple[list[str], Any]:
    """The columns of a table of figures (counters, rates in percent, money) and the function
    that gives a Totals' cells (the per-source reports' CSV files share them)."""
    rate_names = [rate.name for rate in RATES]
    header = [*COUNTER_NAMES, *(f"{name}_percent" for name in rate_names), *MONEY_NAMES]

    def figures(totals: Totals) -> list[Any]:
        rates, money = totals.rates(), totals.money()
        return [
            *(getattr(totals, name) for name in COUNTER_NAMES),
            *(_rate_cell(rates[name]) for name in rate_names),
            *(_cell(money[name]) for name in MONEY_NAMES),
        ]

    return header, figures
