"""The period a report covers, as the URL says it (so a report is shareable): the last 7, 30 or
90 days, a calendar month, or from…to; with the period before it to compare with, and the
grain of its charts. Days are the workspace's (its zone decides what "today" is)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from analytics.selectors import GRAINS

LAST_DAYS = {"7d": 7, "30d": 30, "90d": 90}
PERIODS = (*LAST_DAYS, "month", "custom")
DEFAULT_PERIOD = "30d"
MAX_DAYS = 3 * 366 + 1


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date
    grain: str
    kind: str = DEFAULT_PERIOD
    # The period compared with: the same number of days right before (the month before, for a month).
    previous_start: dt.date | None = None
    previous_end: dt.date | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def query(self) -> dict[str, str]:
        """The URL parameters that name this period."""
        params = {"period": self.kind, "grain": self.grain}
        if self.kind == "month":
            params["month"] = self.start.strftime("%Y-%m")
        elif self.kind == "custom":
            params.update({"from": self.start.isoformat(), "to": self.end.isoformat()})
        return params


def default_grain(days: int) -> str:
    return "day" if days <= 31 else "week" if days <= 190 else "month"


def _month_end(first: dt.date) -> dt.date:
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def period_make(
    *,
    today: dt.date,
    kind: str = DEFAULT_PERIOD,
    month: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    grain: str = "",
) -> Period:
    """The period asked for; ValidationError (by field) for one that makes no sense."""
    if kind in LAST_DAYS:
        end = today
        start = today - dt.timedelta(days=LAST_DAYS[kind] - 1)
    elif kind == "month":
        first = (month or today).replace(day=1)
        start, end = first, _month_end(first)
    elif kind == "custom":
        if start is None and end is None:
            raise ValidationError({"from": _("Give the first day, the last day or both.")})
        end = end or today
        start = start or end - dt.timedelta(days=29)
    else:
        raise ValidationError({"period": _("Unknown period.")})
    if start > end:
        raise ValidationError({"to": _("The last day is before the first day.")})
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationError({"from": _("A report covers at most three years.")})
    if grain and grain not in GRAINS:
        raise ValidationError({"grain": _("Unknown grain.")})
    days = (end - start).days + 1
    if kind == "month":
        previous_end = start - dt.timedelta(days=1)
        previous_start = previous_end.replace(day=1)
    else:
        previous_end = start - dt.timedelta(days=1)
        previous_start = previous_end - dt.timedelta(days=days - 1)
    return Period(start, end, grain or default_grain(days), kind, previous_start, previous_end)
