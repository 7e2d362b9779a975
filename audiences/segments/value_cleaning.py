"""Checking a rule's values: each against its type and operator, normalised to its stored
form, every problem collected with its path (RuleErrors)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences.segments.operators import OPERATORS, TYPE_NAMES, Op, ValueType
from esp.plurals import at_most_characters

MAX_TEXT = 500
MAX_ITEMS = 500
MAX_DAYS = 36_500
MAX_ANNIVERSARY_DAYS = 366

# --- errors: each with the path of its part of the rule -------------------------------------


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
