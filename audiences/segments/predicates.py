"""The SQL predicate of a checked condition: strictly true or false, never NULL, against the
compilation's Clock (now, and today in the workspace's time zone)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.lookups import DataContains, Overlap
from django.db.models import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    Q,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Lower
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    In,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
)

from audiences.segments.operands import FALSE, TRUE, Operand
from audiences.segments.operators import Op, ValueType
from audiences.segments.value_cleaning import MAX_ANNIVERSARY_DAYS

# --- time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """The moment ("now") of a compilation, and "today" in the workspace's time zone: "in the last 7 days"
    and birthdays are the shop's days, not UTC's."""

    now: dt.datetime
    tz: ZoneInfo

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.tz).date()

    def start_of(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=self.tz)


# --- the SQL predicate ----------------------------------------------------------------------


def predicate(operand: Operand, operator: str, value: Any, clock: Clock) -> Q:
    """The strict (never NULL) predicate of a checked condition."""
    if operator == Op.IS_SET:
        return operand.present
    if operator == Op.NOT_SET:
        return FALSE if operand.present is TRUE else ~operand.present
    if operator == Op.NEQ:
        return ~predicate(operand, Op.EQ, value, clock)
    if operator == Op.NOT_IN:
        return ~predicate(operand, Op.IN, value, clock)
    compared = _compare(operand, operator, value, clock)
    return (Q(IsNull(operand.typed, False)) & compared) if operand.nullable else compared


def _param(operand: Operand, value: Any) -> Value:
    """A rule value as a typed bound parameter (never converted through the column's field:
    2.5 compared with an integer column must stay 2.5)."""
    if operand.type == ValueType.NUMBER:
        return Value(Decimal(str(value)), output_field=DecimalField())
    if operand.type == ValueType.BOOLEAN:
        return Value("true" if value else "false") if operand.bool_text else Value(value, BooleanField())
    if operand.type == ValueType.DATE:
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return Value(day.isoformat()) if operand.date_text else Value(day, output_field=DateField())
    if operand.type == ValueType.DATETIME:
        return Value(value, output_field=DateTimeField())
    text = str(value)
    return Value(text.lower() if operand.casefold else text, output_field=TextField())


def _compare(operand: Operand, operator: str, value: Any, clock: Clock) -> Q:
    if operand.type == ValueType.DATETIME:
        return _compare_moment(operand, operator, value, clock)
    if operand.type == ValueType.DATE:
        return _compare_day(operand, operator, value, clock)
    if operand.type == ValueType.ARRAY:
        values = Cast(Value(list(value)), ArrayField(CharField()))
        lookup = DataContains if operator == Op.CONTAINS else Overlap
        return Q(lookup(operand.typed, values))
    expr = Lower(operand.typed) if operand.casefold else operand.typed
    if operand.match_choice is not None and operator in (Op.EQ, Op.IN):
        matched = FALSE
        for choice in value if operator == Op.IN else [value]:
            matched |= operand.match_choice(choice)
        return matched
    if operator == Op.EQ:
        return Q(Exact(expr, _param(operand, value)))
    if operator == Op.IN:
        return Q(In(expr, [_param(operand, item) for item in value]))
    if operator == Op.CONTAINS:
        return Q(IContains(expr, _param(operand, value)))
    if operator == Op.STARTS_WITH:
        return Q(IStartsWith(expr, _param(operand, value)))
    if operator == Op.BETWEEN:
        low, high = value
        return Q(GreaterThanOrEqual(expr, _param(operand, low))) & Q(LessThanOrEqual(expr, _param(operand, high)))
    lookups = {Op.GT: GreaterThan, Op.GTE: GreaterThanOrEqual, Op.LT: LessThan, Op.LTE: LessThanOrEqual}
    return Q(lookups[Op(operator)](expr, _param(operand, value)))


def anniversaries(today: dt.date, days: int) -> list[str]:
    """The 'MM-DD' days from today to today + days, across the year's end. In a year without
    29 February, a 29 February birthday is celebrated on the 28th."""
    month_days: set[str] = set()
    for offset in range(min(days, MAX_ANNIVERSARY_DAYS) + 1):
        day = today + dt.timedelta(days=offset)
        month_days.add(day.strftime("%m-%d"))
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            month_days.add("02-29")
    return sorted(month_days)


def _compare_day(operand: Operand, operator: str, value: Any, clock: Clock) -> Q:
    expr = operand.typed
    today = clock.today

    def p(day: Any) -> Value:
        return _param(operand, day)

    if operator == Op.ANNIVERSARY_IN_NEXT_DAYS:
        return Q(In(operand.month_day, [Value(md) for md in anniversaries(today, value)]))
    if operator == Op.IN_LAST_DAYS:
        low, high = today - dt.timedelta(days=value), today
    elif operator == Op.IN_NEXT_DAYS:
        low, high = today, today + dt.timedelta(days=value)
    elif operator == Op.BETWEEN:
        low, high = value
    elif operator == Op.BEFORE:
        return Q(LessThan(expr, p(value)))
    elif operator == Op.AFTER:
        return Q(GreaterThan(expr, p(value)))
    else:  # eq
        return Q(Exact(expr, p(value)))
    return Q(GreaterThanOrEqual(expr, p(low))) & Q(LessThanOrEqual(expr, p(high)))


def _bounds(value: str, clock: Clock) -> tuple[dt.datetime, dt.datetime, bool]:
    """(start, end, is_day) of a rule's date or date-time: a date means the whole day in the
    workspace's time zone, [start of the day, start of the next day)."""
    if "T" in value:
        moment = dt.datetime.fromisoformat(value)
        return moment, moment, False
    day = dt.date.fromisoformat(value)
    return clock.start_of(day), clock.start_of(day + dt.timedelta(days=1)), True


def _compare_moment(operand: Operand, operator: str, value: Any, clock: Clock) -> Q:
    expr = operand.typed

    def p(moment: dt.datetime) -> Value:
        return Value(moment, output_field=DateTimeField())

    if operator == Op.ANNIVERSARY_IN_NEXT_DAYS:
        return Q(In(operand.month_day, [Value(md) for md in anniversaries(clock.today, value)]))
    if operator == Op.IN_LAST_DAYS:
        return Q(GreaterThanOrEqual(expr, p(clock.now - dt.timedelta(days=value)))) & Q(
            LessThanOrEqual(expr, p(clock.now))
        )
    if operator == Op.IN_NEXT_DAYS:
        return Q(GreaterThanOrEqual(expr, p(clock.now))) & Q(
            LessThanOrEqual(expr, p(clock.now + dt.timedelta(days=value)))
        )
    if operator == Op.BETWEEN:
        start, _end, _day = _bounds(value[0], clock)
        _start, end, is_day = _bounds(value[1], clock)
        upper: Any = LessThan(expr, p(end)) if is_day else LessThanOrEqual(expr, p(end))
        return Q(GreaterThanOrEqual(expr, p(start))) & Q(upper)
    start, end, is_day = _bounds(value, clock)
    if operator == Op.BEFORE:
        return Q(LessThan(expr, p(start)))
    if operator == Op.AFTER:
        return Q(GreaterThanOrEqual(expr, p(end))) if is_day else Q(GreaterThan(expr, p(start)))
    if is_day:  # eq: within that day
        return Q(GreaterThanOrEqual(expr, p(start))) & Q(LessThan(expr, p(end)))
    return Q(Exact(expr, p(start)))
