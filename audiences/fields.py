"""Typed custom fields: a value is checked and converted to its JSON form by its declared type."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.models import CustomField, FieldType

TRUE_WORDS = {"1", "true", "yes", "y", "on", "да"}
FALSE_WORDS = {"0", "false", "no", "n", "off", "нет"}


def _text(field: CustomField, value: Any) -> str:
    return str(value)[:2000]


def _number(field: CustomField, value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError
    return int(value) if isinstance(value, int | float) else int(str(value).strip())


def _decimal(field: CustomField, value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError
    number = Decimal(str(value).strip().replace(",", "."))
    if not number.is_finite():
        raise ValueError
    return str(number)


def _boolean(field: CustomField, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError


def _date(field: CustomField, value: Any) -> str:
    date = value if isinstance(value, dt.date) else parse_date(str(value).strip())
    if date is None:
        raise ValueError
    return date.isoformat()


def _datetime(field: CustomField, value: Any) -> str:
    moment = value if isinstance(value, dt.datetime) else parse_datetime(str(value).strip())
    if moment is None:
        raise ValueError
    return moment.isoformat()


def _choice(field: CustomField, value: Any) -> str | list[str]:
    values = value if isinstance(value, list) else [value]
    if any(str(v) not in field.choices for v in values):
        raise ValueError
    return [str(v) for v in values] if isinstance(value, list) else str(value)


# One dict lookup per value: the import converts millions of them, and a chain of enum
# comparisons cost a fifth of the parser's time.
CONVERTERS: dict[str, Callable[[CustomField, Any], Any]] = {
    FieldType.TEXT: _text,
    FieldType.NUMBER: _number,
    FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.CHOICE: _choice,
}


def _convert(field: CustomField, value: Any) -> Any:
    if value is None or value == "":
        return None
    converter = CONVERTERS.get(field.type)
    if converter is None:
        raise ValueError
    return converter(field, value)


EXPECTED = {
    FieldType.TEXT: gettext_lazy("text"),
    FieldType.NUMBER: gettext_lazy("a whole number"),
    FieldType.DECIMAL: gettext_lazy("a decimal number"),
    FieldType.BOOLEAN: gettext_lazy("yes or no"),
    FieldType.DATE: gettext_lazy("a date (YYYY-MM-DD)"),
    FieldType.DATETIME: gettext_lazy("a date and time (ISO 8601)"),
    FieldType.CHOICE: gettext_lazy("one of the field's choices"),
}


def clean_attributes(
    fields: dict[str, CustomField], values: dict[str, Any], *, keep_unknown: bool = False, prefix: str = "attributes"
) -> dict[str, Any]:
    """Typed values of the declared fields. Raises ValidationError naming each bad field as
    `attributes.<key>`; unknown keys are an error unless `keep_unknown` (event traits)."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in values.items():
        field = fields.get(key)
        if field is None:
            if keep_unknown:
                cleaned[key] = value
            else:
                errors[f"{prefix}.{key}"] = _("Unknown custom field %(key)s.") % {"key": key}
            continue
        try:
            cleaned[key] = _convert(field, value)
        except (ValueError, TypeError, InvalidOperation, OverflowError):
            errors[f"{prefix}.{key}"] = _("Expected %(type)s, got %(value)r.") % {
                "type": EXPECTED[FieldType(field.type)],
                "value": value,
            }
            if field.type == FieldType.CHOICE:
                errors[f"{prefix}.{key}"] += " " + _("Choices: %(choices)s.") % {"choices": ", ".join(field.choices)}
    if errors:
        raise ValidationError(errors)
    return cleaned
