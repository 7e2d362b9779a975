"""Browser pages of one broadcast's, series' or template's report (under /reports/), their CSV
files, the money partials the broadcast and series pages load by URL (campaigns and
automations may not import analytics), and the attribution settings."""

from __future__ import annotations

import csv
import dataclasses
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics import selectors
from analytics.attribution import attribution_settings_save, settings_of
from analytics.forms import PeriodForm
from analytics.kpis import COUNTERS, MONEY, RATES, Totals
from analytics.lift import series_lift
from analytics.models import AttributionSettings
from analytics.periods import Period
from analytics.selectors import GRAINS
from analytics.source_reports import (
    TABLES,
    SourceReport,
    default_period,
    kind_label,
    source_of,
    source_report_build,
    table_rows,
)
from analytics.views import ReportView, tone
from automations.models import Series
from campaigns.models import Broadcast, EmailTemplate
from esp.models import Role

MODELS: dict[str, Any] = {"broadcast": Broadcast, "series": Series, "template": EmailTemplate}
HEADLINE = ("sent", "delivered", "opened", "clicked", "open_rate", "click_rate", "conversions", "revenue",
            "conversion_rate", "revenue_per_recipient", "average_order_value", "unsubscribe_rate")  # fmt: skip


class SourceView(ReportView):
    kind = "broadcast"

    def source(self, pk: int) -> Any:
        found = MODELS[self.kind].objects.filter(workspace=self.workspace, pk=pk).first()
        if found is None:
            raise Http404(_("No such report in this workspace."))
        return found

    def source_period(self, request: HttpRequest, pk: int) -> tuple[PeriodForm, Period | None]:
        """The period the URL names; without one, all the days the source sent on."""
        grain = request.GET.get("grain") or ""
        if not any(request.GET.get(name) for name in ("period", "from", "to", "month")) and grain in ("", *GRAINS):
            today = timezone.now().astimezone(self.workspace.zone).date()
            found = default_period(workspace=self.workspace, kind=self.kind, pk=pk, today=today)
            if found is not None:
                found = dataclasses.replace(found, grain=grain or found.grain)
                form = PeriodForm(initial={"period": "custom", "from": found.start, "to": found.end, "grain": grain})
                return form, found
        return self.period(request)


def _figure(name: str, totals: Totals) -> dict[str, Any]:
    money = {m.name: m for m in MONEY}
    if name in money:
        return {"label": money[name].label, "value": getattr(totals, name), "is_amount": money[name].is_amount}
    rates = {r.name: r for r in RATES}
    if name in rates:
        return {"label": rates[name].label, "value": getattr(totals, name), "is_rate": True}
    return {"label": next(c.label for c in COUNTERS if c.name == name), "value": getattr(totals, name)}


def _chart(report: SourceReport) -> dict[str, Any]:
    def series(name: str, scale: float = 1) -> list[Any]:
        values = [getattr(t, name) for _day, t in report.timeline]
        return [None if v is None else round(float(v) * scale, 2) for v in values]

    return {
        "labels": [day.isoformat() for day, _t in report.timeline],
        "counts": [
            {"label": str(_figure(n, Totals())["label"]), "data": series(n)} for n in ("sent", "opened", "clicked")
        ],
        "rates": [
            {"label": str(_figure(n, Totals())["label"]), "data": series(n, 100)}
            for n in ("open_rate", "click_rate", "conversion_rate")
        ],
        "money": [{"label": str(_("Attributed revenue")), "data": series("revenue")}],
    }


class SourceReportView(SourceView):
    template_name = "analytics/source_report.html"

    def get(self, request: HttpRequest, **kwargs: int) -> HttpResponse:
        pk = next(iter(kwargs.values()))
        obj = self.source(pk)
        form, period = self.source_period(request, pk)
        context: dict[str, Any] = {"form": form, "period": period, "object": obj, "kind": self.kind,
                                   "kind_label": kind_label(self.kind)}  # fmt: skip
        if period is None:
            return render(request, self.template_name, context, status=400)
        report = source_report_build(workspace=self.workspace, kind=self.kind, obj=obj, period=period)
        changes = report.changes()
        headline = []
        for name in HEADLINE:
            item = _figure(name, report.totals) | {"name": name, "change": changes.get(name)}
            item["tone"] = tone(name, item["change"])
            headline.append(item)
        context.update(
            report=report,
            query=period.query(),
            headline=headline,
            steps=[{"step": step, "cells": step.totals} for step in report.steps],
            chart=_chart(report),
            definitions=(*COUNTERS, *RATES, *MONEY),
            attribution=settings_of(self.workspace),
            export_url=request.path + "export/",
        )
        return render(request, self.template_name, context)


class SourceExportView(SourceView):
    """One table of a source's report as CSV (`?table=summary|timeline|steps` and the period)."""

    def get(self, request: HttpRequest, **kwargs: int) -> HttpResponse:
        pk = next(iter(kwargs.values()))
        obj = self.source(pk)
        table = request.GET.get("table") or "summary"
        if table not in TABLES or (table == "steps" and self.kind != "series"):
            return HttpResponse(f"table: {_('Unknown table.')}", status=400, content_type="text/plain; charset=utf-8")
        form, period = self.source_period(request, pk)
        if period is None:
            problems = "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items())
            return HttpResponse(problems, status=400, content_type="text/plain; charset=utf-8")
        report = source_report_build(workspace=self.workspace, kind=self.kind, obj=obj, period=period)
        header, rows = table_rows(report, table)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        name = f"report-{self.kind}-{obj.pk}-{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        writer = csv.writer(response)
        writer.writerow(header)
        writer.writerows(rows)
        return response


class MoneyPartialView(SourceView):
    """The money of a broadcast or series, all its days, as a fragment the broadcast's and the
    series' pages load by URL (htmx): conversions, revenue and their rates, each email step's
    for a series, and the holdout lift."""

    def get(self, request: HttpRequest, **kwargs: int) -> HttpResponse:
        pk = next(iter(kwargs.values()))
        obj = self.source(pk)
        source = source_of(self.kind, pk)
        totals = selectors.source_totals(workspace=self.workspace, kind=source.kind, object_id=pk)
        context: dict[str, Any] = {"object": obj, "kind": self.kind, "totals": totals,
                                   "attribution": settings_of(self.workspace)}  # fmt: skip
        if isinstance(obj, Series):
            context["steps"] = selectors.series_step_totals(workspace=self.workspace, series_id=pk)
            today = timezone.now().astimezone(self.workspace.zone).date()
            period = default_period(workspace=self.workspace, kind=self.kind, pk=pk, today=today)
            if period is not None and (obj.holdout_percent or obj.enrollments.filter(holdout=True).exists()):
                context["lift"] = series_lift(workspace=self.workspace, series=obj, start=period.start, end=period.end)
                context["lift_period"] = period
        return render(request, "analytics/partials/source_money.html", context)


class AttributionForm(forms.Form):
    click_days = forms.IntegerField(
        label=gettext_lazy("Click window (days)"),
        min_value=0,
        max_value=AttributionSettings.MAX_DAYS,
        help_text=gettext_lazy("An order counts for the email its buyer last clicked within this many days before it."),
    )
    open_days = forms.IntegerField(
        label=gettext_lazy("Open window (days)"),
        min_value=0,
        max_value=AttributionSettings.MAX_DAYS,
        help_text=gettext_lazy(
            "Without such a click: the email they last opened within this many days (machine opens never count). "
            "0 turns opens off."
        ),
    )


class AttributionSettingsView(ReportView):
    write_role = Role.OWNER

    def get(self, request: HttpRequest) -> HttpResponse:
        current = settings_of(self.workspace)
        form = AttributionForm(initial={"click_days": current.click_days, "open_days": current.open_days})
        return self._page(request, form)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AttributionForm(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        attribution_settings_save(
            workspace=self.workspace,
            click_days=form.cleaned_data["click_days"],
            open_days=form.cleaned_data["open_days"],
        )
        messages.success(request, _("Saved. Orders are being attributed again with the new windows."))
        return redirect("reports-attribution")

    def _page(self, request: HttpRequest, form: AttributionForm, status: int = 200) -> HttpResponse:
        context = {"form": form, "can_write": self.can(Role.OWNER)}
        return render(request, "analytics/attribution.html", context, status=status)
