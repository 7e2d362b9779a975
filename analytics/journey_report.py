"""The journey and cohort reports as the pages, their CSV files and the API read them: from the
journey rollups only (JourneySnapshot, JourneyFlow, AudienceDay, CohortCell).

Monthly measures, each with its definition on the page:

- first-order rate: contacts who arrived in the month and placed their first order in it ÷
  contacts who arrived in the month;
- repeat-purchase rate: customers who ordered in the month and had ordered before ÷ customers
  who ordered in the month;
- churn rate: contacts who unsubscribed, addresses hard-bounced or complaining (put on the
  suppression list) in the month ÷ the month's audience (contacts at its start + arrivals).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from analytics.cohorts import Cohort, cohorts_read
from analytics.journey import CUSTOMER_STAGES, NEW, STAGES, add_months, months
from analytics.journey_models import AudienceDay, JourneyFlow, JourneySnapshot, SnapshotKind
from audiences.models import LifecycleStage, MailingList, RfmSegment
from esp.models import Workspace

STAGE_LABELS = dict(LifecycleStage.choices)
RFM_LABELS = dict(RfmSegment.choices)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class MonthFigures:
    month: dt.date
    stages: dict[str, int]
    rfm: dict[str, int]
    arrived: int
    first_orders_of_new: int
    ordering: int
    returning: int
    orders: int
    churned: int
    audience: int

    @property
    def first_order_rate(self) -> float | None:
        return _ratio(self.first_orders_of_new, self.arrived)

    @property
    def repeat_rate(self) -> float | None:
        return _ratio(self.returning, self.ordering)

    @property
    def churn_rate(self) -> float | None:
        return _ratio(self.churned, self.audience)

    @property
    def contacts(self) -> int:
        return sum(self.stages.values())


@dataclass(frozen=True)
class ListGrowth:
    list_id: int
    name: str
    months: list[tuple[dt.date, int, int, int, int]]  # month, new, confirmed, unsubscribed, net

    @property
    def totals(self) -> tuple[int, int, int, int]:
        return (
            sum(m[1] for m in self.months),
            sum(m[2] for m in self.months),
            sum(m[3] for m in self.months),
            sum(m[4] for m in self.months),
        )


RECENT_FLOW_MONTHS = 3


@dataclass(frozen=True)
class JourneyReport:
    first: dt.date
    last: dt.date
    months: list[MonthFigures]
    flows: list[tuple[dt.date, str, str, int]]
    lists: list[ListGrowth]
    rfm_segments: list[str]
    taken_at: dt.datetime | None

    @property
    def latest(self) -> MonthFigures | None:
        return self.months[-1] if self.months else None

    @property
    def recent_moves(self) -> list[tuple[dt.date, str, str, int]]:
        """The moves between stages of the last RECENT_FLOW_MONTHS months (the page's table;
        the CSV holds every month, stays included)."""
        months = sorted({month for month, _source, _target, _n in self.flows})[-RECENT_FLOW_MONTHS:]
        return [flow for flow in self.flows if flow[0] in months and flow[1] != flow[2]]


def journey_report(*, workspace: Workspace, first: dt.date, last: dt.date) -> JourneyReport:
    before = add_months(first, -1)
    snapshots = JourneySnapshot.objects.filter(workspace=workspace, month__gte=before, month__lte=last)
    by_month: dict[dt.date, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    taken_at = None
    for row in snapshots.values("month", "kind", "value", "contacts", "taken_at"):
        by_month[row["month"]][row["kind"]][row["value"]] = row["contacts"]
        taken_at = max(taken_at, row["taken_at"]) if taken_at else row["taken_at"]
    flows = [
        (f.month, f.source, f.target, f.contacts)
        for f in JourneyFlow.objects.filter(workspace=workspace, month__gte=first, month__lte=last).order_by(
            "month", "source", "target"
        )
    ]
    first_orders_of_new: dict[dt.date, int] = defaultdict(int)
    for month, source, target, n in flows:
        if source == NEW and target in CUSTOMER_STAGES:
            first_orders_of_new[month] += n
    churn: dict[dt.date, int] = defaultdict(int)
    churn_rows: Any = (
        AudienceDay.objects.filter(workspace=workspace, list_id=0, day__gte=first, day__lte=_month_end(last))
        .annotate(m=TruncMonth("day"))
        .values("m")
        .annotate(u=Sum("unsubscribed"), b=Sum("bounced"), c=Sum("complained"))
    )
    for row in churn_rows:
        churn[_as_date(row["m"])] = (row["u"] or 0) + (row["b"] or 0) + (row["c"] or 0)
    figures = []
    for month in months(first, last):
        snap = by_month.get(month, {})
        stages = {stage: snap.get(SnapshotKind.STAGE, {}).get(stage, 0) for stage in STAGES}
        measures = snap.get(SnapshotKind.MEASURE, {})
        at_start = sum(by_month.get(add_months(month, -1), {}).get(SnapshotKind.STAGE, {}).values())
        figures.append(
            MonthFigures(
                month=month,
                stages=stages,
                rfm=dict(snap.get(SnapshotKind.RFM, {})),
                arrived=measures.get("arrived", 0),
                first_orders_of_new=first_orders_of_new.get(month, 0),
                ordering=measures.get("ordering", 0),
                returning=measures.get("returning", 0),
                orders=measures.get("orders", 0),
                churned=churn.get(month, 0),
                audience=at_start + measures.get("arrived", 0),
            )
        )
    segments = [value for value, _label in RfmSegment.choices if any(m.rfm.get(value) for m in figures)]
    return JourneyReport(first, last, figures, flows, _lists(workspace, first, last), segments, taken_at)


def _as_date(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _month_end(month: dt.date) -> dt.date:
    return add_months(month, 1) - dt.timedelta(days=1)


def _lists(workspace: Workspace, first: dt.date, last: dt.date) -> list[ListGrowth]:
    rows = (
        AudienceDay.objects.filter(workspace=workspace, day__gte=first, day__lte=_month_end(last))
        .exclude(list_id=0)
        .annotate(m=TruncMonth("day"))
        .values("list_id", "m")
        .annotate(n=Sum("new"), c=Sum("confirmed"), u=Sum("unsubscribed"))
    )
    found: dict[int, dict[dt.date, tuple[int, int, int]]] = defaultdict(dict)
    for row in rows:
        found[row["list_id"]][_as_date(row["m"])] = (row["n"] or 0, row["c"] or 0, row["u"] or 0)
    names = dict(MailingList.objects.in_workspace(workspace).values_list("pk", "name"))
    result = []
    for list_id, name in sorted(names.items(), key=lambda item: item[1]):
        per_month = found.get(list_id, {})
        result.append(
            ListGrowth(
                list_id,
                name,
                [(m, *(v := per_month.get(m, (0, 0, 0))), v[0] - v[2]) for m in months(first, last)],
            )
        )
    return result


# --- the tables as plain values (CSV; the page formats the same values) ----------------------

JOURNEY_TABLES = ("stages", "rfm", "flows", "measures", "lists")
COHORT_TABLES = ("retention", "ltv", "cohorts")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def journey_table(report: JourneyReport, table: str) -> tuple[list[str], list[list[Any]]]:
    if table == "stages":
        return ["month", *STAGES], [[m.month.isoformat(), *(m.stages[s] for s in STAGES)] for m in report.months]
    if table == "rfm":
        return ["month", *report.rfm_segments], [
            [m.month.isoformat(), *(m.rfm.get(s, "") for s in report.rfm_segments)] for m in report.months
        ]
    if table == "flows":
        return ["month", "from", "to", "contacts"], [[m.isoformat(), s, t, n] for m, s, t, n in report.flows]
    if table == "measures":
        header = ["month", "arrived", "first_orders_of_new", "first_order_rate_percent", "ordering", "returning",
                  "repeat_rate_percent", "orders", "churned", "audience", "churn_rate_percent"]  # fmt: skip
        return header, [
            [m.month.isoformat(), m.arrived, m.first_orders_of_new, _pct(m.first_order_rate), m.ordering,
             m.returning, _pct(m.repeat_rate), m.orders, m.churned, m.audience, _pct(m.churn_rate)]
            for m in report.months
        ]  # fmt: skip
    rows = [
        [g.list_id, g.name, month.isoformat(), new, confirmed, unsubscribed, net]
        for g in report.lists
        for month, new, confirmed, unsubscribed, net in g.months
    ]
    return ["list_id", "list", "month", "new", "confirmed", "unsubscribed", "net"], rows


def cohort_table(cohorts: list[Cohort], table: str, width: int) -> tuple[list[str], list[list[Any]]]:
    offsets = list(range(width + 1))
    if table == "retention":
        return ["cohort", "customers", *(f"month_{k}_percent" for k in offsets)], [
            [c.cohort.isoformat(), c.customers, *(_pct(cell.retention) for cell in c.cells)] for c in cohorts
        ]
    if table == "ltv":
        return ["cohort", "customers", *(f"month_{k}" for k in offsets)], [
            [c.cohort.isoformat(), c.customers, *(cell.ltv for cell in c.cells)] for c in cohorts
        ]
    return ["cohort", "customers", "orders", "revenue", "aov", "repeat_rate_percent", "ltv"], [
        [c.cohort.isoformat(), c.customers, c.orders, c.revenue, c.aov if c.aov is not None else "",
         _pct(c.repeat_rate), c.ltv if c.ltv is not None else ""]
        for c in cohorts
    ]  # fmt: skip


def cohorts_report(*, workspace: Workspace, first: dt.date, last: dt.date, width: int = 12) -> list[Cohort]:
    return cohorts_read(workspace=workspace, first=first, last=last, max_offset=width)
