"""Typed comparisons for segment conditions: which operators a value type takes, how a rule's value
is checked and normalised, and the SQL predicate — an ORM lookup over an expression, with the
value always a bound parameter.

Every predicate built here is strictly true or false, never NULL: a comparison is guarded by
"the value is present". SQL's three-valued logic would otherwise make NOT (x > 5) drop the rows
where x is missing, and a negated group would then match neither the contacts it excludes nor
those it should keep. `neq` and `not_in` are the negation of `eq` and `in`, so they include
contacts without a value ("country is not DE" includes contacts with no country).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.lookups import DataContains, Overlap
from django.core.exceptions import ValidationError
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    F,
    Func,
    IntegerField,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Lower, Substr
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
    Regex,
)
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from esp.plurals import at_most_characters

MAX_TEXT = 500
MAX_ITEMS = 500
MAX_DAYS = 36_500
MAX_ANNIVERSARY_DAYS = 366


class ValueType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    ARRAY = "array"  # a set of strings: tags, products and categories bought


class Op(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"
    IN = "in"
    NOT_IN = "not_in"
    IS_SET = "is_set"
    NOT_SET = "not_set"
    BEFORE = "before"
    AFTER = "after"
    IN_LAST_DAYS = "in_last_days"
    IN_NEXT_DAYS = "in_next_days"
    ANNIVERSARY_IN_NEXT_DAYS = "anniversary_in_next_days"


_DATE_OPS = (
    Op.EQ, Op.NEQ, Op.BEFORE, Op.AFTER, Op.BETWEEN, Op.IN_LAST_DAYS, Op.IN_NEXT_DAYS, Op.ANNIVERSARY_IN_NEXT_DAYS,
    Op.IS_SET, Op.NOT_SET,
)  # fmt: skip
OPERATORS: dict[ValueType, tuple[Op, ...]] = {
    ValueType.TEXT: (Op.EQ, Op.NEQ, Op.CONTAINS, Op.STARTS_WITH, Op.IN, Op.NOT_IN, Op.IS_SET, Op.NOT_SET),
    ValueType.NUMBER: (
        Op.EQ,
        Op.NEQ,
        Op.GT,
        Op.GTE,
        Op.LT,
        Op.LTE,
        Op.BETWEEN,
        Op.IN,
        Op.NOT_IN,
        Op.IS_SET,
        Op.NOT_SET,
    ),
    ValueType.DATE: _DATE_OPS,
    ValueType.DATETIME: _DATE_OPS,
    ValueType.BOOLEAN: (Op.EQ, Op.IS_SET, Op.NOT_SET),
    ValueType.CHOICE: (Op.EQ, Op.NEQ, Op.IN, Op.NOT_IN, Op.IS_SET, Op.NOT_SET),
    ValueType.ARRAY: (Op.IN, Op.NOT_IN, Op.CONTAINS, Op.IS_SET, Op.NOT_SET),
}
TYPE_NAMES = {
    ValueType.TEXT: gettext_lazy("text"),
    ValueType.NUMBER: gettext_lazy("number"),
    ValueType.DATE: gettext_lazy("date"),
    ValueType.DATETIME: gettext_lazy("date and time"),
    ValueType.BOOLEAN: gettext_lazy("yes/no"),
    ValueType.CHOICE: gettext_lazy("choice"),
    ValueType.ARRAY: gettext_lazy("list"),
}
OPERATOR_LABELS: dict[str, Any] = {
    Op.EQ: gettext_lazy("is"),
    Op.NEQ: gettext_lazy("is not"),
    Op.CONTAINS: gettext_lazy("contains"),
    Op.STARTS_WITH: gettext_lazy("starts with"),
    Op.GT: gettext_lazy("is more than"),
    Op.GTE: gettext_lazy("is at least"),
    Op.LT: gettext_lazy("is less than"),
    Op.LTE: gettext_lazy("is at most"),
    Op.BETWEEN: gettext_lazy("is between"),
    Op.IN: gettext_lazy("is one of"),
    Op.NOT_IN: gettext_lazy("is none of"),
    Op.IS_SET: gettext_lazy("is set"),
    Op.NOT_SET: gettext_lazy("is not set"),
    Op.BEFORE: gettext_lazy("is before"),
    Op.AFTER: gettext_lazy("is after"),
    Op.IN_LAST_DAYS: gettext_lazy("is in the last … days"),
    Op.IN_NEXT_DAYS: gettext_lazy("is in the next … days"),
    Op.ANNIVERSARY_IN_NEXT_DAYS: gettext_lazy("has its anniversary in the next … days"),
}
# Sets read differently: "tags has any of vip, gold".
ARRAY_OPERATOR_LABELS: dict[str, Any] = {
    Op.IN: gettext_lazy("has any of"),
    Op.NOT_IN: gettext_lazy("has none of"),
    Op.CONTAINS: gettext_lazy("has all of"),
    Op.IS_SET: gettext_lazy("has any"),
    Op.NOT_SET: gettext_lazy("is empty"),
}


def operator_label(value_type: ValueType, operator: str) -> str:
    labels = ARRAY_OPERATOR_LABELS if value_type == ValueType.ARRAY else OPERATOR_LABELS
    return str(labels.get(operator, operator))


def operators_schema() -> dict[str, list[dict[str, str]]]:
    """The operators of each type with their labels, for the builder in the browser."""
    return {
        value_type.value: [{"value": op.value, "label": operator_label(value_type, op)} for op in ops]
        for value_type, ops in OPERATORS.items()
    }


# --- errors and time ------------------------------------------------------------------------


def at(path: str, key: str | int) -> str:
    """The path of a part of a rule: "conditions[2].operator"."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class RuleErrors:
    """Collects every problem of a rule tree with its path, so the builder can mark each one."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path or "rules", []).append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


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


# --- operands: what a condition compares ----------------------------------------------------


TRUE = Q(Exact(Value(1), Value(1)))
FALSE = Q(Exact(Value(1), Value(0)))


class ToNumeric(Func):
    template = "(%(expressions)s)::numeric"
    output_field = DecimalField()


class ToTimestamp(Func):
    template = "(%(expressions)s)::timestamptz"
    output_field = DateTimeField()


class MonthDay(Func):
    """'MM-DD' of a date column."""

    template = "to_char(%(expressions)s, 'MM-DD')"
    output_field = TextField()


class LocalMonthDay(Func):
    """'MM-DD' of a timestamp in a time zone: to_char(timezone(zone, ts), 'MM-DD')."""

    template = "to_char(timezone(%(expressions)s), 'MM-DD')"
    output_field = TextField()


class Cardinality(Func):
    function = "cardinality"
    output_field = IntegerField()


# Guards before a cast: JSON values are typed on write, but values written before a field was
# declared (or kept from event traits) may not be; a failed cast would abort the whole query.
# The patterns admit only strings PostgreSQL's casts accept, so the CASE never raises.
NUMBER_RE = r"^\s*-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$"
_MONTH_DAY = r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
_LEAP_YEAR = r"([1-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[13579][26])00)"
_DATE = rf"([1-9][0-9]{{3}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
DATE_RE = rf"^{_DATE}$"
DATETIME_RE = (
    rf"^{_DATE}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{{1,6}})?)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$"
)


@dataclass(frozen=True)
class Operand:
    """A typed value of a contact (or of an event) as an SQL expression.

    `typed` is NULL exactly when the value is missing (or unreadable as its type); `present`
    is the strict predicate "has a value". Dates stored in JSON stay ISO text (`date_text`):
    ISO dates order correctly as text, and comparing text can never fail."""

    type: ValueType
    typed: Any
    present: Q
    # Whether `typed` can be NULL: then a comparison is guarded by IS NOT NULL to stay strict.
    nullable: bool = True
    choices: tuple[str, ...] = ()
    casefold: bool = False
    date_text: bool = False
    bool_text: bool = False
    month_day: Any = None
    # A stored choice may be one string or a list of them (multiple choice): matched by JSON
    # containment instead of equality.
    match_choice: Callable[[str], Q] | None = None


def column_operand(
    expression: Any,
    value_type: ValueType,
    *,
    nullable: bool,
    choices: Sequence[str] = (),
    casefold: bool = False,
    tz: ZoneInfo | None = None,
) -> Operand:
    """A column (or an expression over columns) of a whitelisted field."""
    expr = F(expression) if isinstance(expression, str) else expression
    present = Q(IsNull(expr, False)) if nullable else TRUE
    if value_type in (ValueType.TEXT, ValueType.CHOICE):
        present = (present & ~Q(Exact(expr, Value("")))) if nullable else ~Q(Exact(expr, Value("")))
    elif value_type == ValueType.ARRAY:
        has_items = Q(GreaterThan(Cardinality(expr), Value(0)))
        present = (Q(IsNull(expr, False)) & has_items) if nullable else has_items
    month_day: Any = None
    if value_type == ValueType.DATE:
        month_day = MonthDay(expr)
    elif value_type == ValueType.DATETIME:
        month_day = LocalMonthDay(Value(str(tz or ZoneInfo("UTC"))), expr)
    return Operand(value_type, expr, present, nullable, tuple(choices), casefold=casefold, month_day=month_day)


def json_operand(
    json_field: str, key: str, value_type: ValueType, *, choices: Sequence[str] = (), tz: ZoneInfo | None = None
) -> Operand:
    """A key of a JSON column (a custom field in Contact.attributes, a property of an event).
    The key is a bound parameter of the -> operator, never part of the SQL text."""
    text = KeyTextTransform(key, json_field)
    not_empty = ~Q(Exact(text, Value("")))
    if value_type == ValueType.NUMBER:
        typed: Any = Case(When(Regex(text, Value(NUMBER_RE)), then=ToNumeric(text)), default=None)
        return Operand(value_type, typed, Q(IsNull(typed, False)))
    if value_type == ValueType.DATE:
        typed = Case(When(Regex(text, Value(DATE_RE)), then=text), default=None, output_field=TextField())
        return Operand(value_type, typed, Q(IsNull(typed, False)), date_text=True, month_day=Substr(typed, 6, 5))
    if value_type == ValueType.DATETIME:
        typed = Case(When(Regex(text, Value(DATETIME_RE)), then=ToTimestamp(text)), default=None)
        return Operand(
            value_type,
            typed,
            Q(IsNull(typed, False)),
            month_day=LocalMonthDay(Value(str(tz or ZoneInfo("UTC"))), typed),
        )
    if value_type == ValueType.BOOLEAN:
        present = Q(IsNull(text, False)) & Q(In(text, [Value("true"), Value("false")]))
        return Operand(value_type, text, present, bool_text=True)
    if value_type == ValueType.CHOICE:

        def match(choice: str) -> Q:
            return Q(**{f"{json_field}__contains": {key: choice}}) | Q(**{f"{json_field}__contains": {key: [choice]}})

        present = Q(IsNull(text, False)) & ~Q(In(text, [Value(""), Value("[]")]))
        # Containment in a NOT NULL column is never NULL: no guard needed.
        return Operand(value_type, text, present, False, tuple(choices), match_choice=match)
    return Operand(ValueType.TEXT, text, Q(IsNull(text, False)) & not_empty)


# --- checking a rule's value ----------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and abs(number) < Decimal("1e18") else None


def _json_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _date_or_datetime(value: Any, *, allow_datetime: bool) -> str | None:
    """An ISO date, or (for date-and-time fields) an ISO date-time with its offset."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        day = parse_date(text)
        if day is not None:
            return day.isoformat()
        moment = parse_datetime(text) if allow_datetime else None
    except ValueError:
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()


def days_value(value: Any, path: str, errors: RuleErrors, *, maximum: int = MAX_DAYS) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors.add(path, _("Expected a whole number of days."))
        return None
    try:
        days = int(str(value).strip())
    except ValueError:
        errors.add(path, _("Expected a whole number of days."))
        return None
    if not 0 <= days <= maximum:
        errors.add(
            path,
            ngettext("Expected between 0 and %(max)d day.", "Expected between 0 and %(max)d days.", maximum)
            % {"max": maximum},
        )
        return None
    return days


def clean_value(
    value_type: ValueType, operator: str, value: Any, path: str, errors: RuleErrors, choices: Sequence[str] = ()
) -> Any:
    """The value of a condition checked against its type and operator, in its stored form.
    Problems are added to `errors` under `path`."""
    if operator in (Op.IS_SET, Op.NOT_SET):
        return None
    if operator in (Op.IN_LAST_DAYS, Op.IN_NEXT_DAYS):
        return days_value(value, path, errors)
    if operator == Op.ANNIVERSARY_IN_NEXT_DAYS:
        return days_value(value, path, errors, maximum=MAX_ANNIVERSARY_DAYS)
    if operator == Op.BETWEEN:
        if not isinstance(value, list) or len(value) != 2:
            errors.add(path, _("Expected two values, [from, to]."))
            return None
        low = _single(value_type, value[0], f"{path}[0]", errors, choices)
        high = _single(value_type, value[1], f"{path}[1]", errors, choices)
        if low is not None and high is not None and _order_key(value_type, low) > _order_key(value_type, high):
            errors.add(path, _("The first value must not be after the second."))
        return [low, high]
    if operator in (Op.IN, Op.NOT_IN) or (value_type == ValueType.ARRAY and operator == Op.CONTAINS):
        items = value if isinstance(value, list) else [value]
        if not items or len(items) > MAX_ITEMS:
            errors.add(
                path,
                ngettext("Expected between 1 and %(max)d value.", "Expected between 1 and %(max)d values.", MAX_ITEMS)
                % {"max": MAX_ITEMS},
            )
            return None
        item_type = ValueType.TEXT if value_type == ValueType.ARRAY else value_type
        cleaned = [_single(item_type, item, f"{path}[{i}]", errors, choices) for i, item in enumerate(items)]
        return list(dict.fromkeys(cleaned))  # unique, in the given order
    return _single(value_type, value, path, errors, choices)


def _order_key(value_type: ValueType, value: Any) -> Any:
    if value_type == ValueType.NUMBER:
        return Decimal(str(value))
    if value_type == ValueType.DATETIME:
        moment = parse_datetime(value) if "T" in value else None
        return moment or dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
    return value


def _single(value_type: ValueType, value: Any, path: str, errors: RuleErrors, choices: Sequence[str]) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.add(path, _("Give a value (or use “is set” / “is not set”)."))
        return None
    if value_type == ValueType.NUMBER:
        number = _number(value)
        if number is None:
            errors.add(path, _("%(value)r is not a number.") % {"value": value})
            return None
        return _json_number(number)
    if value_type in (ValueType.DATE, ValueType.DATETIME):
        iso = _date_or_datetime(value, allow_datetime=value_type == ValueType.DATETIME)
        if iso is None:
            expected = _("a date (YYYY-MM-DD)") if value_type == ValueType.DATE else _("a date or an ISO date-time")
            errors.add(path, _("%(value)r is not %(expected)s.") % {"value": value, "expected": expected})
        return iso
    if value_type == ValueType.BOOLEAN:
        if not isinstance(value, bool):
            errors.add(path, _("Expected true or false."))
            return None
        return value
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        errors.add(path, _("Expected text."))
        return None
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        errors.add(path, at_most_characters(MAX_TEXT))
        return None
    if value_type == ValueType.CHOICE and choices and text not in choices:
        errors.add(path, _("%(value)r is not one of: %(choices)s.") % {"value": text, "choices": ", ".join(choices)})
        return None
    return text


def clean_operator(value_type: ValueType, operator: Any, path: str, errors: RuleErrors) -> str | None:
    allowed = OPERATORS[value_type]
    if operator not in allowed:
        errors.add(
            path,
            _("%(operator)r is not an operator for %(type)s fields; use one of: %(allowed)s.")
            % {"operator": operator, "type": TYPE_NAMES[value_type], "allowed": ", ".join(allowed)},
        )
        return None
    return str(operator)


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


def is_time_relative(operator: str) -> bool:
    """Whether the operator's result changes with the clock alone (refreshed by beat)."""
    return operator in (Op.IN_LAST_DAYS, Op.IN_NEXT_DAYS, Op.ANNIVERSARY_IN_NEXT_DAYS)
