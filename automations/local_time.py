"""Wall-clock moments in a contact's time zone: "Tuesday at 10:00", "3 days before the
birthday at 09:00". Built as local dates and times in the zone and only then turned into
instants, so a moment keeps its wall-clock time across a DST change (10:00 stays 10:00, never
09:00 or 11:00). A wall time that does not exist on a spring-forward day comes out as the
same time on the new offset (02:30 → 03:30); an ambiguous one on a fall-back day is the
first of the two.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Collection
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_time(text: Any) -> dt.time | None:
    match = TIME_RE.match(text) if isinstance(text, str) else None
    return dt.time(int(match.group(1)), int(match.group(2))) if match else None


def zone_of(*names: str) -> zoneinfo.ZoneInfo:
    """The first of these zone names that exists (the contact's, then the workspace's), else UTC."""
    for name in names:
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def at_local(day: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant of a local date and wall time, in UTC."""
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(dt.UTC)


def next_weekday_time(
    after: dt.datetime, time: dt.time, zone: zoneinfo.ZoneInfo, weekdays: Collection[int] = ()
) -> dt.datetime:
    """The first moment at or after `after` that is `time` in the zone on one of the ISO
    `weekdays` (1 = Monday; empty: any day)."""
    start = after.astimezone(zone).date()
    for days in range(9):
        day = start + dt.timedelta(days=days)
        if weekdays and day.isoweekday() not in weekdays:
            continue
        moment = at_local(day, time, zone)
        if moment >= after:
            return moment
    raise ValueError("no weekday given matches")  # unreachable with weekdays from 1 to 7


def anniversary(date: dt.date, year: int) -> dt.date:
    """The date's anniversary in `year`; 29 February is kept on the 28th in other years."""
    try:
        return date.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


def next_anniversary_moment(
    after: dt.datetime, date: dt.date, offset_days: int, time: dt.time, zone: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, int]:
    """The first moment at or after `after` that is `offset_days` from an anniversary of
    `date`, at `time` in the zone; with the anniversary's year."""
    local_year = after.astimezone(zone).year
    for year in range(local_year - 1, local_year + 3):
        moment = at_local(anniversary(date, year) + dt.timedelta(days=offset_days), time, zone)
        if moment >= after:
            return moment, year
    raise ValueError("an offset of more than a year")  # offsets are checked to be at most a year


def date_value(raw: Any, zone: zoneinfo.ZoneInfo) -> dt.date | None:
    """A stored date (a date, "2027-03-01", or a date and time read in the zone) or None."""
    if isinstance(raw, dt.datetime):
        return raw.astimezone(zone).date() if raw.tzinfo else raw.date()
    if isinstance(raw, dt.date):
        return raw
    if not isinstance(raw, str):
        return None
    try:
        if len(raw) > 10:
            moment = parse_datetime(raw)
            if moment is not None:
                return moment.astimezone(zone).date() if moment.tzinfo else moment.date()
        return parse_date(raw[:10])
    except ValueError:
        return None
