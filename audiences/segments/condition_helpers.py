"""What the built-in condition kinds share: unknown keys, "did / did not", and a comparison in
words."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from audiences.segments.values import Op, RuleErrors, ValueType, at, operator_label


def _unknown_keys(condition: dict[str, Any], allowed: frozenset[str], path: str, errors: RuleErrors) -> None:
    for key in sorted(set(condition) - allowed - {"kind"}):
        errors.add(at(path, key), _("Unknown key %(key)r for this kind of condition.") % {"key": key})


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_value_text(item) for item in value)
    return str(value)


def _describe_comparison(label: str, value_type: ValueType, operator: str, value: Any) -> str:
    words = operator_label(value_type, operator)
    if operator in (Op.IN_LAST_DAYS, Op.IN_NEXT_DAYS, Op.ANNIVERSARY_IN_NEXT_DAYS):
        return f"{label} {words.replace('…', str(value))}"
    if operator == Op.BETWEEN and isinstance(value, list):
        return f"{label} {words} {_value_text(value[0])} {_('and')} {_value_text(value[1])}"
    return f"{label} {words} {_value_text(value)}".rstrip()


def _did(value: Any, path: str, errors: RuleErrors) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        errors.add(path, _("Expected true or false."))
        return True
    return value
