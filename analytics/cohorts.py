"""Cohorts by month of first order: how many of a month's new customers order again in each
month after (retention), their cumulative revenue per customer (LTV), AOV and repeat rate.

Computed from CustomerMonth (analytics.journey) into CohortCell by the journey's refresh and
rebuild; the page and the API read CohortCell only. Definitions:

- cohort: the month (workspace zone) of a customer's first counted order; its size is the
  number of such customers;
- retention at month k: customers of the cohort with an order in month k after ÷ its size
  (month 0 is 100 % by definition);
- LTV at month k: the cohort's revenue (refunds taken off) from month 0 to k ÷ its size;
- AOV: the cohort's revenue ÷ its orders, up to now;
- repeat rate at month k: customers with two orders or more by then ÷ its size.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from analytics.journey_models import CohortCell
from esp.models import Workspace

_CELLS = """
WITH cm AS (
    SELECT contact_id, month, orders, revenue FROM analytics_customermonth
    WHERE workspace_id = %(ws)s AND month <= %(last)s
), firsts AS (
    SELECT contact_id, min(month) AS cohort FROM cm GROUP BY contact_id
), x AS (
    SELECT f.cohort, cm.contact_id,
           ((extract(year FROM cm.month) - extract(year FROM f.cohort)) * 12
             + extract(month FROM cm.month) - extract(month FROM f.cohort))::int AS "offset",
           cm.orders, cm.revenue,
           sum(cm.orders) OVER (PARTITION BY cm.contact_id ORDER BY cm.month) AS orders_so_far
    FROM cm JOIN firsts f ON f.contact_id = cm.contact_id
    WHERE f.cohort >= %(first)s
)
SELECT cohort, "offset", count(*), sum(orders), sum(revenue),
       count(*) FILTER (WHERE orders_so_far >= 2 AND orders_so_far - orders < 2)
FROM x GROUP BY cohort, "offset"
"""


def cohorts_aggregate(*, workspace: Workspace, cursor: Any, first: dt.date, last: dt.date) -> None:
    """Recompute the workspace's CohortCell rows (cohorts from `first` to `last`) in the
    journey's transaction."""
    from analytics.journey import months_between

    cursor.execute(_CELLS, {"ws": workspace.pk, "first": first, "last": last})
    found: dict[dt.date, dict[int, tuple[int, int, Decimal, int]]] = defaultdict(dict)
    for cohort, offset, active, orders, revenue, became_repeat in cursor.fetchall():
        found[cohort][offset] = (active, orders, revenue or Decimal(0), became_repeat)
    CohortCell.objects.filter(workspace=workspace).delete()
    rows = []
    for cohort, cells in found.items():
        size = cells.get(0, (0, 0, Decimal(0), 0))[0]
        repeaters = 0
        for offset in range(months_between(cohort, last) + 1):
            active, orders, revenue, became = cells.get(offset, (0, 0, Decimal(0), 0))
            repeaters += became
            rows.append(
                CohortCell(workspace=workspace, cohort=cohort, offset=offset, customers=size, active=active,
                           orders=orders, revenue=revenue, repeaters=repeaters)
            )  # fmt: skip
    CohortCell.objects.bulk_create(rows)


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortMonth:
    offset: int
    active: int
    retention: float | None
    ltv: Decimal | None  # cumulative revenue per customer
    repeat_rate: float | None
    shade: int  # 0..100, for the heatmap's colour


@dataclass(frozen=True)
class Cohort:
    cohort: dt.date
    customers: int
    orders: int
    revenue: Decimal
    cells: list[CohortMonth] = field(default_factory=list)

    @property
    def aov(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None

    @property
    def repeat_rate(self) -> float | None:
        return self.cells[-1].repeat_rate if self.cells else None

    @property
    def ltv(self) -> Decimal | None:
        return self.cells[-1].ltv if self.cells else None


def cohorts_read(*, workspace: Workspace, first: dt.date, last: dt.date, max_offset: int = 12) -> list[Cohort]:
    """The cohorts whose month lies in first..last (first days of months), with up to
    `max_offset` months after each."""
    rows = CohortCell.objects.filter(
        workspace=workspace, cohort__gte=first, cohort__lte=last, offset__lte=max_offset
    ).order_by("cohort", "offset")
    totals = {
        row["cohort"]: row
        for row in CohortCell.objects.filter(workspace=workspace, cohort__gte=first, cohort__lte=last)
        .values("cohort")
        .annotate(**{"orders_sum": _sum("orders"), "revenue_sum": _sum("revenue")})
    }
    by_cohort: dict[dt.date, list[CohortCell]] = defaultdict(list)
    for cell in rows:
        by_cohort[cell.cohort].append(cell)
    cohorts = []
    for cohort, cells in by_cohort.items():
        size = cells[0].customers
        cumulative = Decimal(0)
        months = []
        for cell in cells:
            cumulative += cell.revenue
            retention = cell.active / size if size else None
            months.append(
                CohortMonth(
                    offset=cell.offset,
                    active=cell.active,
                    retention=retention,
                    ltv=(cumulative / size).quantize(Decimal("0.01")) if size else None,
                    repeat_rate=cell.repeaters / size if size else None,
                    shade=round(100 * retention) if retention is not None else 0,
                )
            )
        total = totals.get(cohort, {})
        cohorts.append(
            Cohort(cohort, size, int(total.get("orders_sum") or 0), Decimal(total.get("revenue_sum") or 0), months)
        )
    return cohorts


def _sum(name: str) -> Any:
    from django.db.models import Sum

    return Sum(name)
