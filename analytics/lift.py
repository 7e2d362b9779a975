"""Holdout lift of a series: did the series make people buy, or would they have bought anyway?

A series with a holdout (Series.holdout_percent) keeps a share of the people who enter out of
it (Enrollment.holdout: drawn from a hash, they get no email). Over a period:

- the *entrants* and the *held out* are the contacts whose first entry into the series in the
  period was sent on, or held out;
- a contact *converted* when they placed an order (any order, attributed to an email or not,
  as analytics.attribution reads orders: an order refunded in full is none) after that entry
  and before the period's end;
- *conversion rate*: converted ÷ contacts of the group; *revenue per contact*: their orders'
  revenue (less refunds) ÷ contacts of the group.

The lift is entrants − held out. Its 95 % confidence interval: for the conversion rate the
two-proportion normal approximation (difference ± 1.96 × √(p₁(1−p₁)/n₁ + p₂(1−p₂)/n₂)); for
revenue per contact the same on the two means (Welch: ± 1.96 × √(s₁²/n₁ + s₂²/n₂)). It is
*significant* when the interval leaves out 0; with fewer than MIN_GROUP contacts in a group
it is not computed at all.

Read live from the series' enrollments and the Attribution rows of their contacts (one
indexed probe per contact): bounded by the people who entered the series in the period, not
by the size of the send log.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection

from analytics.models import Attribution
from automations.models import Enrollment, Series
from esp.models import Workspace

Z_95 = 1.959964
MIN_GROUP = 2

_SQL = f"""
WITH entered AS (
    SELECT DISTINCT ON (en.contact_id) en.contact_id, en.holdout, en.entered_at
    FROM {Enrollment._meta.db_table} en
    WHERE en.series_id = %(series)s AND en.workspace_id = %(workspace)s
      AND en.entered_at >= %(start)s AND en.entered_at < %(end)s
    ORDER BY en.contact_id, en.entered_at, en.id
), bought AS (
    SELECT x.holdout, coalesce(o.orders, 0) AS orders, coalesce(o.revenue, 0) AS revenue
    FROM entered x
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE a.counts) AS orders, sum(a.amount - a.refunded) AS revenue
        FROM {Attribution._meta.db_table} a
        WHERE a.workspace_id = %(workspace)s AND a.contact_id = x.contact_id
          AND a.ordered_at >= x.entered_at AND a.ordered_at < %(end)s
    ) o
)
SELECT holdout, count(*), count(*) FILTER (WHERE orders > 0), coalesce(sum(revenue), 0),
       coalesce(sum(revenue * revenue), 0)
FROM bought GROUP BY holdout
"""  # noqa: S608 — table names only; values are parameters


@dataclass(frozen=True)
class Group:
    contacts: int = 0
    converted: int = 0
    revenue: Decimal = Decimal(0)
    # Σ revenue² over the contacts: the spread of revenue per contact.
    revenue_squares: Decimal = Decimal(0)

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.contacts if self.contacts else None

    @property
    def revenue_per_contact(self) -> Decimal | None:
        return (self.revenue / self.contacts).quantize(Decimal("0.01")) if self.contacts else None

    def revenue_variance(self) -> float:
        """The sample variance of revenue per contact."""
        if self.contacts < 2:
            return 0.0
        mean = float(self.revenue) / self.contacts
        return max(0.0, (float(self.revenue_squares) - self.contacts * mean * mean) / (self.contacts - 1))


@dataclass(frozen=True)
class Interval:
    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Lift:
    entrants: Group
    holdout: Group

    @property
    def measurable(self) -> bool:
        return self.entrants.contacts >= MIN_GROUP and self.holdout.contacts >= MIN_GROUP

    @property
    def conversion(self) -> Interval | None:
        """Entrants' conversion rate − the held out's, with its 95 % interval."""
        if not self.measurable:
            return None
        p1, n1 = self.entrants.converted / self.entrants.contacts, self.entrants.contacts
        p2, n2 = self.holdout.converted / self.holdout.contacts, self.holdout.contacts
        margin = Z_95 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        return Interval(p1 - p2, p1 - p2 - margin, p1 - p2 + margin)

    @property
    def relative_conversion(self) -> float | None:
        """The lift relative to the held out's rate (0.5 = entrants convert 50 % more often)."""
        rate = self.holdout.conversion_rate
        if not self.measurable or not rate:
            return None
        return (self.entrants.conversion_rate or 0) / rate - 1

    @property
    def revenue(self) -> Interval | None:
        """Entrants' revenue per contact − the held out's, with its 95 % interval."""
        if not self.measurable:
            return None
        m1 = float(self.entrants.revenue) / self.entrants.contacts
        m2 = float(self.holdout.revenue) / self.holdout.contacts
        margin = Z_95 * math.sqrt(
            self.entrants.revenue_variance() / self.entrants.contacts
            + self.holdout.revenue_variance() / self.holdout.contacts
        )
        return Interval(m1 - m2, m1 - m2 - margin, m1 - m2 + margin)


def series_lift(*, workspace: Workspace, series: Series, start: dt.date, end: dt.date) -> Lift:
    """The lift of the people who entered the series from `start` to `end` (days in the
    workspace's zone), their orders counted up to the end of `end`."""
    zone = workspace.zone
    params: dict[str, Any] = {
        "series": series.pk,
        "workspace": workspace.pk,
        "start": dt.datetime.combine(start, dt.time(), tzinfo=zone),
        "end": dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone),
    }
    groups = {True: Group(), False: Group()}
    with connection.cursor() as cursor:
        cursor.execute(_SQL, params)
        for holdout, contacts, converted, revenue, squares in cursor.fetchall():
            groups[bool(holdout)] = Group(int(contacts), int(converted), Decimal(revenue), Decimal(squares))
    return Lift(entrants=groups[False], holdout=groups[True])
