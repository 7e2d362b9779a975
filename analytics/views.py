"""Browser pages of the reports, under /reports/: the Overview (a period's figures against the
period before, charts over time, top broadcasts and series) and its tables as CSV files.
Everything is read from the rollups. Viewers read it all; nothing here writes."""

from __future__ import annotations

import csv
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics.attribution import settings_of
from analytics.forms import PeriodForm
from analytics.kpis import COUNTERS, MONEY, RATES, SHOP
from analytics.overview import TABLES, Overview, overview_build, table_rows
from analytics.periods import DEFAULT_PERIOD, Period
from esp.web import WorkspaceView

# The figures at the top of the page: counts, then rates.
HEADLINE_COUNTS = ("sent", "delivered", "opened", "clicked")
HEADLINE_RATES = ("open_rate", "click_rate", "click_to_open", "unsubscribe_rate", "complaint_rate", "bounce_rate")
# Figures whose rise is bad news (shown red when they go up, green when they go down).
WORSE_WHEN_UP = frozenset({"bounced", "bounced_hard", "bounced_soft", "deferred", "complained", "unsubscribed",
                           "clicked_machine", "bounce_rate", "unsubscribe_rate", "complaint_rate"})  # fmt: skip


def tone(name: str, change: float | None) -> str:
    """ "good", "bad" or "" for a figure's change (a CSS class)."""
    if not change:
        return ""
    return "bad" if (change > 0) == (name in WORSE_WHEN_UP) else "good"


class ReportView(WorkspaceView):
    def period(self, request: HttpRequest) -> tuple[PeriodForm, Period | None]:
        data = request.GET.copy()
        if not data.get("period") and not (data.get("from") or data.get("to")):
            data["period"] = DEFAULT_PERIOD  # so the picker shows the period the page shows
        form = PeriodForm(data)
        today = timezone.now().astimezone(self.workspace.zone).date()
        return form, form.period_for(today=today)


def money_cards(overview: Overview) -> list[dict[str, Any]]:
    """The money figures at the top of the Overview, each with its change."""
    money, changes = overview.totals.money(), overview.money_changes()
    shop, shop_changes = overview.shop_figures(), overview.shop_changes()
    cards = [
        {"name": m.name, "label": m.label, "doc": m.doc, "value": money[m.name], "is_amount": m.is_amount,
         "change": changes[m.name], "tone": tone(m.name, changes[m.name])}
        for m in MONEY
    ]  # fmt: skip
    rate = overview.totals.conversion_rate
    before = overview.previous.conversion_rate
    cards.insert(2, {"name": "conversion_rate", "label": _("Conversion rate"), "value": rate, "is_rate": True,
                     "point_change": None if rate is None or before is None else rate - before})  # fmt: skip
    for m in SHOP:
        card = {"name": m.name, "label": m.label, "doc": m.doc, "value": shop[m.name], "is_amount": m.is_amount}
        if m.name == "email_share":
            card.update(is_rate=True, point_change=None)
        else:
            card.update(change=shop_changes[m.name], tone=tone(m.name, shop_changes[m.name]))
        cards.append(card)
    return cards


def money_summary(overview: Overview) -> list[dict[str, Any]]:
    money, before, changes = overview.totals.money(), overview.previous.money(), overview.money_changes()
    shop, shop_before = overview.shop_figures(), overview.shop_figures(overview.previous_shop, overview.previous)
    shop_changes = overview.shop_changes()
    rows = [
        {"name": m.name, "label": m.label, "value": money[m.name], "previous": before[m.name],
         "is_amount": m.is_amount, "change": changes[m.name], "tone": tone(m.name, changes[m.name])}
        for m in MONEY
    ]  # fmt: skip
    for m in SHOP:
        rows.append({"name": m.name, "label": m.label, "value": shop[m.name], "previous": shop_before[m.name],
                     "is_amount": m.is_amount, "is_rate": m.name == "email_share",
                     "change": None if m.name == "email_share" else shop_changes[m.name],
                     "tone": tone(m.name, shop_changes[m.name])})  # fmt: skip
    return rows


def _chart(overview: Overview) -> dict[str, Any]:
    """What the charts draw (static/js/reports.js), with their words."""
    labels = [day.isoformat() for day, _totals in overview.timeline]
    counts = {c.name: str(c.label) for c in COUNTERS if c.name in ("sent", "delivered", "opened", "clicked")}
    rates = {r.name: str(r.label) for r in RATES if r.name in ("open_rate", "click_rate", "bounce_rate")}
    return {
        "labels": labels,
        "counts": [
            {"label": label, "data": [getattr(t, name) for _day, t in overview.timeline]}
            for name, label in counts.items()
        ],
        "rates": [
            {
                "label": label,
                "data": [
                    None if (v := getattr(t, name)) is None else round(v * 100, 2) for _day, t in overview.timeline
                ],
            }
            for name, label in rates.items()
        ],
        "money": [
            {"label": str(_("Attributed revenue")), "data": [float(t.revenue) for _day, t in overview.timeline]},
        ],
    }


class OverviewView(ReportView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form, period = self.period(request)
        context: dict[str, Any] = {"form": form, "period": period, "tables": TABLES}
        if period is None:
            return render(request, "analytics/overview.html", context, status=400)
        overview = overview_build(workspace=self.workspace, period=period)
        counter_changes, rate_changes = overview.counter_changes(), overview.rate_changes()
        labels = {c.name: c.label for c in COUNTERS} | {r.name: r.label for r in RATES}
        rates, previous_rates = overview.totals.rates(), overview.previous.rates()
        context.update(
            overview=overview,
            query=period.query(),
            headline_counts=[
                {
                    "name": n,
                    "label": labels[n],
                    "value": getattr(overview.totals, n),
                    "change": counter_changes[n],
                    "tone": tone(n, counter_changes[n]),
                }
                for n in HEADLINE_COUNTS
            ],
            headline_rates=[
                {
                    "name": n,
                    "label": labels[n],
                    "value": rates[n],
                    "change": rate_changes[n],
                    "tone": tone(n, rate_changes[n]),
                }
                for n in HEADLINE_RATES
            ],
            summary_counts=[
                {
                    "counter": c,
                    "value": getattr(overview.totals, c.name),
                    "previous": getattr(overview.previous, c.name),
                    "change": counter_changes[c.name],
                    "tone": tone(c.name, counter_changes[c.name]),
                }
                for c in COUNTERS
            ],
            summary_rates=[
                {
                    "rate": r,
                    "value": rates[r.name],
                    "previous": previous_rates[r.name],
                    "change": rate_changes[r.name],
                    "tone": tone(r.name, rate_changes[r.name]),
                }
                for r in RATES
            ],
            chart=_chart(overview),
            counters=COUNTERS,
            rate_definitions=RATES,
            money_cards=money_cards(overview),
            money_summary=money_summary(overview),
            money_definitions=(*MONEY, *SHOP),
            attribution=settings_of(self.workspace),
        )
        return render(request, "analytics/overview.html", context)


class ExportView(ReportView):
    """One table of the Overview as CSV (`?table=summary|timeline|broadcasts|series` and the
    page's period)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        table = request.GET.get("table") or "summary"
        form, period = self.period(request)
        if table not in TABLES:
            form.add_error(None, _("Unknown table."))
        if period is None or table not in TABLES:
            problems = "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items())
            return HttpResponse(problems, status=400, content_type="text/plain; charset=utf-8")
        header, rows = table_rows(overview_build(workspace=self.workspace, period=period), table)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        name = f"report-{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        writer = csv.writer(response)
        writer.writerow(header)
        writer.writerows(rows)
        return response
