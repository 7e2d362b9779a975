"""Date triggers: a contact's date comes round (a birthday at 09:00 their time, a week before
their predicted next order), and they enter.

A beat task looks, for each live series with a date trigger, at the moments that fell in
(the last check, now] and enrolls those contacts with one INSERT … SELECT per series
(enrollments_insert, so the flow filter, re-entry and holdout apply as for any trigger). The
moment is computed in SQL as a wall-clock time in the contact's zone (else the workspace's;
a zone PostgreSQL does not know counts as absent), the same way automations/local_time.py
does for waits, so DST never moves it.

Entry keys make the trigger fire once per occasion: an anniversary is keyed by its year (one
birthday enrolls once that year, whatever the re-entry rule), a predicted order by its date (a
new order moves the prediction, and the new date may enroll again).

A series' row is locked (SKIP LOCKED) while it is checked and its check mark moved, so two
beats never look at one window twice. After an outage the window reaches back at most
MAX_CATCH_UP: a birthday mail a week late is worse than none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from automations.engine.enroll import enrollments_insert
from automations.models import Series, SeriesStatus
from automations.trigger_kinds import PREDICTED_NEXT_ORDER
from esp import clock

MAX_CATCH_UP = dt.timedelta(days=1)
# Local dates run up to 14 hours from UTC dates: the candidates' calendar days are the window's
# UTC days widened by a day on each side.
_DAY_MARGIN = dt.timedelta(days=1)

# The zones PostgreSQL knows, read once per statement (pg_timezone_names reads the zone files:
# never per row); a contact's zone it does not know falls back to the workspace's, then UTC.
_ZONES = "WITH zones AS MATERIALIZED (SELECT name FROM pg_timezone_names)"
_ZONE_JOIN = "LEFT JOIN zones cz ON cz.name = NULLIF(c.time_zone, '') LEFT JOIN zones wz ON wz.name = %(ws_tz)s"
_ZONE = "COALESCE(cz.name, wz.name, 'UTC')"


def _month_days(since: dt.datetime, now: dt.datetime, offset: int) -> list[str]:
    """The "MM-DD" of every date whose anniversary, moved by `offset` days, can fall in the
    window (29 February too when the 28th is among them: it is kept on the 28th)."""
    days: set[str] = set()
    day = (since - _DAY_MARGIN).date()
    while day <= (now + _DAY_MARGIN).date():
        shifted = day - dt.timedelta(days=offset)
        days.add(shifted.strftime("%m-%d"))
        if shifted.month == 2 and shifted.day == 28:
            days.add("02-29")
        day += dt.timedelta(days=1)
        if len(days) >= 366:
            break
    return sorted(days)


def _anniversary_candidates(series: Series, since: dt.datetime, now: dt.datetime) -> tuple[str, dict[str, Any]]:
    trigger = series.trigger
    attribute = trigger["attribute"]
    if attribute == "birth_date":
        date_sql = "c.birth_date"
    else:
        date_sql = (
            "(CASE WHEN c.attributes ->> %(key)s ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' "
            "THEN left(c.attributes ->> %(key)s, 10)::date END)"
        )
    params = {
        "ws": series.workspace_id,
        "ws_tz": series.workspace.time_zone or "UTC",
        "key": attribute,
        "offset": int(trigger.get("offset_days") or 0),
        "time": trigger.get("time") or "09:00",
        "since": since,
        "now": now,
        "y0": since.year - 1,
        "y1": now.year + 1,
        "month_days": _month_days(since, now, int(trigger.get("offset_days") or 0)),
    }
    if attribute == "birth_date":
        # The expression of the contact_birthday index (audiences migration 0016), word for word.
        month_day_filter = (
            "c.birth_date IS NOT NULL AND (extract(month FROM c.birth_date) * 100 + extract(day FROM c.birth_date)) "
            "= ANY(%(month_day_numbers)s::numeric[])"
        )
        params["month_day_numbers"] = [int(md[:2]) * 100 + int(md[3:]) for md in params["month_days"]]
    else:
        month_day_filter = f"to_char({date_sql}, 'MM-DD') = ANY(%(month_days)s)"
    sql = f"""
        {_ZONES}
        SELECT m.contact_id, m.year::text AS entry_key,
               jsonb_build_object('date', m.anniversary, 'year', m.year, 'years', m.year - extract(year FROM m.d)::int)
                   AS entry_data,
               NULL::bigint AS entry_event_id
        FROM (
            SELECT b.contact_id, b.d, y.year, a.anniversary,
                   ((a.anniversary + %(offset)s) + %(time)s::time) AT TIME ZONE b.tz AS at
            FROM (
                SELECT c.id AS contact_id, {date_sql} AS d, {_ZONE} AS tz
                FROM audiences_contact c {_ZONE_JOIN}
                WHERE c.workspace_id = %(ws)s AND {month_day_filter}
            ) b
            CROSS JOIN generate_series(%(y0)s::int, %(y1)s::int) AS y (year)
            CROSS JOIN LATERAL (
                SELECT make_date(
                    y.year, extract(month FROM b.d)::int,
                    CASE WHEN extract(month FROM b.d) = 2 AND extract(day FROM b.d) = 29
                              AND NOT (y.year %% 4 = 0 AND (y.year %% 100 <> 0 OR y.year %% 400 = 0))
                         THEN 28 ELSE extract(day FROM b.d)::int END
                ) AS anniversary
            ) a
        ) m
        WHERE m.at > %(since)s AND m.at <= %(now)s
    """  # noqa: S608 — constant fragments; every value is a parameter
    return sql, params


def _predicted_order_candidates(series: Series, since: dt.datetime, now: dt.datetime) -> tuple[str, dict[str, Any]]:
    offset = int(series.trigger.get("offset_days") or 0)
    params = {
        "ws": series.workspace_id,
        "ws_tz": series.workspace.time_zone or "UTC",
        "offset": offset,
        "time": series.trigger.get("time") or "09:00",
        "since": since,
        "now": now,
        # The prediction's instant lies within a day of its local date, which lies `offset`
        # days from the moment: an indexable range around the window.
        "low": since - dt.timedelta(days=offset) - 2 * _DAY_MARGIN,
        "high": now - dt.timedelta(days=offset) + 2 * _DAY_MARGIN,
    }
    sql = f"""
        {_ZONES}
        SELECT m.contact_id, m.predicted::text AS entry_key,
               jsonb_build_object('predicted_next_order', m.predicted) AS entry_data,
               NULL::bigint AS entry_event_id
        FROM (
            SELECT b.contact_id, b.predicted, ((b.predicted + %(offset)s) + %(time)s::time) AT TIME ZONE b.tz AS at
            FROM (
                SELECT c.id AS contact_id, {_ZONE} AS tz,
                       (f.predicted_next_order_at AT TIME ZONE {_ZONE})::date AS predicted
                FROM audiences_customerfacts f
                JOIN audiences_contact c ON c.id = f.contact_id {_ZONE_JOIN}
                WHERE f.workspace_id = %(ws)s AND f.predicted_next_order_at BETWEEN %(low)s AND %(high)s
            ) b
        ) m
        WHERE m.at > %(since)s AND m.at <= %(now)s
    """  # noqa: S608 — constant fragments; every value is a parameter
    return sql, params


def _named_to_positional(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """enrollments_insert adds positional parameters around the candidates' query."""
    values: list[Any] = []
    out: list[str] = []
    index = 0
    while index < len(sql):
        if sql.startswith("%(", index):
            end = sql.index(")s", index)
            values.append(params[sql[index + 2 : end]])
            out.append("%s")
            index = end + 2
        else:
            out.append(sql[index])
            index += 1
    return "".join(out), values


def date_candidates(series: Series, since: dt.datetime, now: dt.datetime) -> tuple[str, list[Any]]:
    """The candidates' query (contact_id, entry_key, entry_data, entry_event_id) of a date
    series whose moments fall in (since, now]."""
    if series.trigger.get("attribute") == PREDICTED_NEXT_ORDER:
        sql, params = _predicted_order_candidates(series, since, now)
    else:
        sql, params = _anniversary_candidates(series, since, now)
    return _named_to_positional(sql, params)


@transaction.atomic
def date_triggers_run(*, now: dt.datetime | None = None) -> list[tuple[int, list[int]]]:
    """Enroll the contacts whose date moment came since each live date series was last
    checked; (series id, new enrollment ids) for each series checked."""
    now = now or clock.now()
    done = []
    candidates = (
        Series.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("workspace", "live_version")
        .filter(status=SeriesStatus.LIVE, trigger__type="date", live_version__isnull=False)
        .order_by("pk")
    )
    for one in candidates:
        assert one.live_version is not None
        since = one.dates_checked_until or one.live_version.published_at or now
        since = max(since, now - MAX_CATCH_UP)
        if since >= now:
            continue
        sql, params = date_candidates(one, since, now)
        ids = enrollments_insert(one, sql, params, now)
        Series.objects.filter(pk=one.pk).update(dates_checked_until=now)
        done.append((one.pk, ids))
    return done
