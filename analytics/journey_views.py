"""Browser pages of the journey, cohorts, goals, deliverability and the KPI digest settings,
under /reports/, with every table as CSV. Read from the rollups; viewers read everything,
marketers and owners write goals, each member sets their own digest (owners anyone's)."""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics import deliverability as dl
from analytics.goals import services as goals
from analytics.journey import STAGES, add_months, months_between
from analytics.journey_forms import DigestForm, GoalForm, MonthRangeForm
from analytics.journey_models import DigestSettings, Goal
from analytics.journey_report import (
    COHORT_TABLES,
    JOURNEY_TABLES,
    RFM_LABELS,
    STAGE_LABELS,
    cohort_table,
    cohorts_report,
    journey_report,
    journey_table,
)
from analytics.views import ReportView
from esp.forms import add_service_errors
from esp.models import Membership, Role
from esp.web import confirm_page, request_user

COHORT_WIDTH = 12


def _csv(name: str, header: list[str], rows: list[list[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


def _problems(form: Any) -> HttpResponse:
    text = "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items())
    return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")


class MonthsView(ReportView):
    def months(self, request: HttpRequest) -> tuple[MonthRangeForm, tuple[dt.date, dt.date] | None]:
        form = MonthRangeForm(request.GET)
        today = timezone.now().astimezone(self.workspace.zone).date()
        return form, form.months_for(today=today)

    @staticmethod
    def query(first: dt.date, last: dt.date) -> dict[str, str]:
        return {"from": first.strftime("%Y-%m"), "to": last.strftime("%Y-%m")}


def _journey_chart(report: Any) -> dict[str, Any]:
    labels = [m.month.strftime("%Y-%m") for m in report.months]
    return {
        "labels": labels,
        "charts": [
            {
                "id": "chart-stages",
                "stacked": True,
                "datasets": [
                    {"label": str(STAGE_LABELS[s]), "data": [m.stages[s] for m in report.months]} for s in STAGES
                ],
            },
            {
                "id": "chart-journey-rates",
                "unit": " %",
                "datasets": [
                    {
                        "label": label,
                        "data": [None if (v := fn(m)) is None else round(v * 100, 2) for m in report.months],
                    }
                    for label, fn in (
                        (_("First-order rate of new contacts"), lambda m: m.first_order_rate),
                        (_("Repeat-purchase rate"), lambda m: m.repeat_rate),
                        (_("Churn rate"), lambda m: m.churn_rate),
                    )
                ],
            },
        ],
    }


class JourneyView(MonthsView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form, span = self.months(request)
        context: dict[str, Any] = {"form": form, "section": "journey"}
        if span is None:
            return render(request, "analytics/journey.html", context, status=400)
        report = journey_report(workspace=self.workspace, first=span[0], last=span[1])
        context.update(
            report=report,
            query=self.query(*span),
            stages=[(s, STAGE_LABELS[s]) for s in STAGES],
            rfm_segments=[(s, RFM_LABELS[s]) for s in report.rfm_segments],
            flow_labels={**{k: str(v) for k, v in STAGE_LABELS.items()}, "new": _("New contacts")},
            chart=_journey_chart(report),
        )
        return render(request, "analytics/journey.html", context)


class JourneyExportView(MonthsView):
    def get(self, request: HttpRequest) -> HttpResponse:
        table = request.GET.get("table") or "stages"
        form, span = self.months(request)
        if table not in JOURNEY_TABLES:
            form.add_error(None, _("Unknown table."))
        if span is None or table not in JOURNEY_TABLES:
            return _problems(form)
        report = journey_report(workspace=self.workspace, first=span[0], last=span[1])
        return _csv(f"journey-{table}-{span[0]:%Y-%m}-{span[1]:%Y-%m}", *journey_table(report, table))


class CohortsView(MonthsView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form, span = self.months(request)
        context: dict[str, Any] = {"form": form, "section": "cohorts"}
        if span is None:
            return render(request, "analytics/cohorts.html", context, status=400)
        cohorts = cohorts_report(workspace=self.workspace, first=span[0], last=span[1], width=COHORT_WIDTH)
        width = min(COHORT_WIDTH, months_between(span[0], timezone.now().astimezone(self.workspace.zone).date()))
        context.update(
            cohorts=cohorts,
            offsets=list(range(width + 1)),
            query=self.query(*span),
            chart={
                "labels": [f"{k}" for k in range(width + 1)],
                "charts": [
                    {
                        "id": "chart-ltv",
                        "datasets": [
                            {"label": c.cohort.strftime("%Y-%m"), "data": [float(x.ltv or 0) for x in c.cells]}
                            for c in cohorts[-6:]
                        ],
                    }
                ],
            },
        )
        return render(request, "analytics/cohorts.html", context)


class CohortsExportView(MonthsView):
    def get(self, request: HttpRequest) -> HttpResponse:
        table = request.GET.get("table") or "cohorts"
        form, span = self.months(request)
        if table not in COHORT_TABLES:
            form.add_error(None, _("Unknown table."))
        if span is None or table not in COHORT_TABLES:
            return _problems(form)
        cohorts = cohorts_report(workspace=self.workspace, first=span[0], last=span[1], width=COHORT_WIDTH)
        return _csv(f"cohorts-{table}-{span[0]:%Y-%m}-{span[1]:%Y-%m}", *cohort_table(cohorts, table, COHORT_WIDTH))


# --- goals -------------------------------------------------------------------------------------


class GoalsView(ReportView):
    def get(self, request: HttpRequest) -> HttpResponse:
        progress = goals.goals_progress(workspace=self.workspace)
        return render(
            request,
            "analytics/goals.html",
            {"section": "goals", "goals": progress, "can_edit": self.can(Role.MARKETER)},
        )


class GoalsExportView(ReportView):
    def get(self, request: HttpRequest) -> HttpResponse:
        rows = [goals.progress_row(item) for item in goals.goals_progress(workspace=self.workspace)]
        header = ["id", "name", "kpi", "target_kind", "target_value", "start", "end", "segment", "baseline",
                  "target", "current", "progress", "forecast", "needed", "current_pace", "elapsed_days",
                  "total_days", "on_track", "reached"]  # fmt: skip
        return _csv("goals", header, [[row[h] for h in header] for row in rows])


def _goal_input(form: GoalForm) -> goals.GoalInput:
    data = form.cleaned_data
    return goals.GoalInput(
        name=data["name"],
        kpi=data["kpi"],
        target_kind=data["target_kind"],
        target_value=data["target_value"],
        start=data["start"],
        end=data["end"],
        segment_id=data.get("segment"),
    )


class GoalEditView(ReportView):
    """New goal (no id) or a goal's settings; viewers see the form read-only."""

    def _render(self, request: HttpRequest, form: GoalForm, goal: Goal | None, status: int = 200) -> HttpResponse:
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        context = {"section": "goals", "form": form, "goal": goal, "can_edit": self.can(Role.MARKETER)}
        return render(request, "analytics/goal_form.html", context, status=status)

    def get(self, request: HttpRequest, goal_id: int | None = None) -> HttpResponse:
        goal = goals.goal_get(workspace=self.workspace, goal_id=goal_id) if goal_id else None
        if goal is None:
            today = timezone.now().astimezone(self.workspace.zone).date()
            quarter_first = today.replace(day=1, month=(today.month - 1) // 3 * 3 + 1)
            initial = {"target_kind": "growth", "target_value": 40, "kpi": "first_orders", "start": quarter_first,
                       "end": add_months(quarter_first, 2)}  # fmt: skip
        else:
            initial = {"name": goal.name, "kpi": goal.kpi, "target_kind": goal.target_kind,
                       "target_value": goal.target_value.normalize(), "start": goal.start, "end": goal.end,
                       "segment": goal.segment_id}  # fmt: skip
        return self._render(request, GoalForm(initial=initial, workspace=self.workspace), goal)

    def post(self, request: HttpRequest, goal_id: int | None = None) -> HttpResponse:
        goal = goals.goal_get(workspace=self.workspace, goal_id=goal_id) if goal_id else None
        form = GoalForm(request.POST, workspace=self.workspace)
        if form.is_valid():
            try:
                goals.goal_save(
                    workspace=self.workspace, data=_goal_input(form), goal_id=goal_id, user=request_user(request)
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("Goal saved."))
                return redirect("reports-goals")
        return self._render(request, form, goal, status=400)


class GoalDeleteView(ReportView):
    def get(self, request: HttpRequest, goal_id: int) -> HttpResponse:
        goal = goals.goal_get(workspace=self.workspace, goal_id=goal_id)
        return confirm_page(
            request,
            title=_("Delete goal"),
            question=_("Delete the goal “%(name)s”?") % {"name": goal.name},
            consequences=[_("Its target and period go; the figures it followed stay.")],
            button=_("Delete"),
            cancel="reports-goals",
        )

    def post(self, request: HttpRequest, goal_id: int) -> HttpResponse:
        goals.goal_delete(workspace=self.workspace, goal_id=goal_id)
        messages.success(request, _("Goal deleted."))
        return redirect("reports-goals")


# --- deliverability ---------------------------------------------------------------------------


def _provider_rows(items: list[dl.ProviderFigures]) -> list[list[Any]]:
    def pct(v: float | None) -> str:
        return "" if v is None else f"{v * 100:.3f}"

    return [
        [i.provider, i.label, i.totals.sent, i.totals.delivered, i.totals.bounced, i.totals.bounced_hard,
         i.totals.complained, pct(i.totals.bounce_rate), pct(i.totals.complaint_rate), i.complaint_level,
         i.bounce_level]
        for i in items
    ]  # fmt: skip


PROVIDER_HEADER = ["provider", "label", "sent", "delivered", "bounced", "bounced_hard", "complained",
                   "bounce_rate_percent", "complaint_rate_percent", "complaint_level", "bounce_level"]  # fmt: skip


def _percent_of(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 3)


class DeliverabilityView(ReportView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form, period = self.period(request)
        context: dict[str, Any] = {"form": form, "section": "deliverability"}
        if period is None:
            return render(request, "analytics/deliverability.html", context, status=400)
        items = dl.by_provider(workspace=self.workspace, start=period.start, end=period.end)
        timeline = dl.timeline(workspace=self.workspace, start=period.start, end=period.end)
        chart = {
            "labels": [day.isoformat() for day, _x in timeline],
            "charts": [
                {
                    "id": "chart-complaints",
                    "unit": " %",
                    "datasets": [
                        {
                            "label": str(dl.PROVIDERS[p][0]),
                            "data": [_percent_of(t[p].complaint_rate) if p in t else None for _d, t in timeline],
                        }
                        for p in dl.PROVIDER_ORDER
                        if any(p in t for _d, t in timeline)
                    ],
                }
            ],
        }
        context.update(
            period=period,
            query=period.query(),
            providers=items,
            total=dl.total_of(items),
            warning=dl.warning_compute(workspace=self.workspace),
            thresholds={
                "warning": dl.COMPLAINT_WARNING,
                "limit": dl.COMPLAINT_LIMIT,
                "bounce": dl.BOUNCE_WARNING,
                "volume": dl.MIN_VOLUME,
                "days": dl.WARNING_DAYS,
            },
            domains=[(str(label), exact, prefixes) for label, exact, prefixes in dl.PROVIDERS.values()],
            chart=chart,
        )
        return render(request, "analytics/deliverability.html", context)


class DeliverabilityExportView(ReportView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form, period = self.period(request)
        if period is None:
            return _problems(form)
        items = dl.by_provider(workspace=self.workspace, start=period.start, end=period.end)
        rows = _provider_rows([*items, dl.total_of(items)])
        return _csv(f"deliverability-{period.start}-{period.end}", PROVIDER_HEADER, rows)


# --- the KPI digest ---------------------------------------------------------------------------


class DigestView(ReportView):
    """Who gets the KPI digest: each member sets their own; owners set anyone's."""

    write_role = Role.VIEWER

    def _members(self) -> list[tuple[Membership, str]]:
        chosen = dict(DigestSettings.objects.filter(workspace=self.workspace).values_list("user_id", "frequency"))
        members = Membership.objects.in_workspace(self.workspace).select_related("user").order_by("user__email")
        return [(m, chosen.get(m.user_id, "off")) for m in members]

    def _editable(self, membership: Membership) -> bool:
        return self.can(Role.OWNER) or membership.user_id == self.membership.user_id

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = [
            {
                "member": m,
                "form": DigestForm(initial={"frequency": f}, prefix=f"m{m.pk}"),
                "editable": self._editable(m),
            }
            for m, f in self._members()
        ]
        return render(request, "analytics/digest.html", {"section": "digest", "rows": rows})

    def post(self, request: HttpRequest) -> HttpResponse:
        from analytics.digest import digest_settings_save

        member_id = request.POST.get("member", "")
        membership = (
            Membership.objects.in_workspace(self.workspace).filter(pk=int(member_id)).first()
            if member_id.isdigit() and len(member_id) < 19
            else None
        )
        if membership is None:
            return HttpResponse(_("No such member."), status=404)
        if not self._editable(membership):
            return HttpResponse(_("Only owners set other members' digests."), status=403)
        form = DigestForm(request.POST, prefix=f"m{membership.pk}")
        if not form.is_valid():
            return _problems(form)
        digest_settings_save(workspace=self.workspace, user=membership.user, frequency=form.cleaned_data["frequency"])
        messages.success(request, _("Digest settings saved."))
        return redirect("reports-digest")
