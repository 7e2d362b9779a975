"""Operands: what a condition compares, a typed value of a contact (or of an event) as an
SQL expression, with the strict predicate "has a value"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import (
    Case,
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
from django.db.models.functions import Substr
from django.db.models.lookups import Exact, GreaterThan, In, IsNull, Regex

from audiences.segments.operators import ValueType

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
