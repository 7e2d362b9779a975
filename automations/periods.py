"""The periods a series' step counts can be read over: today (in the workspace's time zone),
the last 7, 30 or 90 days, or all time. The series page and the lists behind its counts take the
same `period` from the query string, so a count and the people it lists always agree."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from esp import clock

PERIODS: dict[str, Promise] = {
    "today": _("today"),
    "7d": _("last 7 days"),
    "30d": _("last 30 days"),
    "90d": _("last 90 days"),
    "all": _("all time"),
}
DEFAULT_PERIOD = "30d"
_DAYS = {"7d": 7, "30d": 30, "90d": 90}


class UnknownPeriod(ValueError):
    pass


def period_of(value: str | None) -> str:
    """The period a query string asks for; absent or empty is the default."""
    if not value:
        return DEFAULT_PERIOD
    if value not in PERIODS:
        raise UnknownPeriod(value)
    return value


def period_since(period: str, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """Where the period starts (None: all time). "today" starts at midnight in `tz`, the
    workspace's time zone, which is what a marketer there means by today."""
    now = clock.now()
    if period == "all":
        return None
    if period == "today":
        local = now.astimezone(tz)
        return dt.datetime.combine(local.date(), dt.time.min, tzinfo=tz)
    if period in _DAYS:
        return now - dt.timedelta(days=_DAYS[period])
    raise UnknownPeriod(period)
