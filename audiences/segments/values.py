"""Typed comparisons for segment conditions: which operators a value type takes, how a rule's value
is checked and normalised, and the SQL predicate — an ORM lookup over an expression, with the
value always a bound parameter.

Every predicate built here is strictly true or false, never NULL: a comparison is guarded by
"the value is present". SQL's three-valued logic would otherwise make NOT (x > 5) drop the rows
where x is missing, and a negated group would then match neither the contacts it excludes nor
those it should keep. `neq` and `not_in` are the negation of `eq` and `in`, so they include
contacts without a value ("country is not DE" includes contacts with no country).

One concern a module, gathered here (the names every condition kind uses):

    operators.py       value types, the operators each takes, their labels
    value_cleaning.py  a rule's values checked and normalised; RuleErrors and their paths
    operands.py        what a condition compares: a column or a JSON key as a typed expression
    predicates.py      the strict SQL predicate, against the compilation's Clock
"""

from __future__ import annotations

from audiences.segments.operands import (
    DATE_RE,
    DATETIME_RE,
    FALSE,
    NUMBER_RE,
    TRUE,
    Cardinality,
    LocalMonthDay,
    MonthDay,
    Operand,
    ToNumeric,
    ToTimestamp,
    column_operand,
    json_operand,
)
from audiences.segments.operators import (
    ARRAY_OPERATOR_LABELS,
    OPERATOR_LABELS,
    OPERATORS,
    TYPE_NAMES,
    Op,
    ValueType,
    is_time_relative,
    operator_label,
    operators_schema,
)
from audiences.segments.predicates import (
    Clock,
    anniversaries,
    predicate,
)
from audiences.segments.value_cleaning import (
    MAX_ANNIVERSARY_DAYS,
    MAX_DAYS,
    MAX_ITEMS,
    MAX_TEXT,
    RuleErrors,
    at,
    clean_operator,
    clean_value,
    days_value,
)

__all__ = [
    "ARRAY_OPERATOR_LABELS",
    "DATETIME_RE",
    "DATE_RE",
    "FALSE",
    "MAX_ANNIVERSARY_DAYS",
    "MAX_DAYS",
    "MAX_ITEMS",
    "MAX_TEXT",
    "NUMBER_RE",
    "OPERATORS",
    "OPERATOR_LABELS",
    "TRUE",
    "TYPE_NAMES",
    "Cardinality",
    "Clock",
    "LocalMonthDay",
    "MonthDay",
    "Op",
    "Operand",
    "RuleErrors",
    "ToNumeric",
    "ToTimestamp",
    "ValueType",
    "anniversaries",
    "at",
    "clean_operator",
    "clean_value",
    "column_operand",
    "days_value",
    "is_time_relative",
    "json_operand",
    "operator_label",
    "operators_schema",
    "predicate",
]
