"""Value types and their operators: which operators a type takes, and their labels."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.utils.translation import gettext_lazy


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


def is_time_relative(operator: str) -> bool:
    """Whether the operator's result changes with the clock alone (refreshed by beat)."""
    return operator in (Op.IN_LAST_DAYS, Op.IN_NEXT_DAYS, Op.ANNIVERSARY_IN_NEXT_DAYS)
