"""Conditions on purchase facts: a fact compared (facts), and the named groups a customer is
in (rfm_segment, lifecycle_stage)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import CharField, DecimalField, F, IntegerField, Q, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.models import LifecycleStage, RfmSegment
from audiences.segments.condition_helpers import _describe_comparison, _unknown_keys
from audiences.segments.contact_conditions import FieldSpec, _clean_field_condition
from audiences.segments.registry import ConditionKind, RuleContext
from audiences.segments.values import (
    Op,
    Operand,
    RuleErrors,
    ValueType,
    at,
    clean_value,
    column_operand,
    is_time_relative,
    predicate,
)

# --- purchase facts -------------------------------------------------------------------------


def _coalesced(name: str, default: Any, output_field: Any) -> Any:
    """A contact without a facts row has never been processed: it counts as zero orders."""
    return Coalesce(F(f"facts__{name}"), Value(default), output_field=output_field)


@dataclass(frozen=True)
class FactSpec(FieldSpec):
    default: Any = None

    def operand(self, ctx: RuleContext) -> Operand:
        if self.default is not None:
            output: Any = DecimalField() if isinstance(self.default, Decimal) else IntegerField()
            return column_operand(_coalesced(self.name, self.default, output), self.type, nullable=False)
        return column_operand(f"facts__{self.name}", self.type, nullable=True, tz=ctx.clock.tz)


FACT_FIELDS: dict[str, FactSpec] = {
    spec.name: spec
    for spec in (
        FactSpec("orders_count", gettext_lazy("Orders"), ValueType.NUMBER, default=0),
        FactSpec("revenue", gettext_lazy("Revenue"), ValueType.NUMBER, default=Decimal(0)),
        FactSpec("average_order_value", gettext_lazy("Average order value"), ValueType.NUMBER),
        FactSpec("last_order_at", gettext_lazy("Last order"), ValueType.DATETIME),
        FactSpec("first_order_at", gettext_lazy("First order"), ValueType.DATETIME),
        FactSpec("predicted_next_order_at", gettext_lazy("Predicted next order"), ValueType.DATETIME),
        FactSpec("median_days_between_orders", gettext_lazy("Median days between orders"), ValueType.NUMBER),
        FactSpec("refunds_count", gettext_lazy("Refunds"), ValueType.NUMBER, default=0),
        FactSpec("products", gettext_lazy("Products bought"), ValueType.ARRAY),
        FactSpec("categories", gettext_lazy("Categories bought"), ValueType.ARRAY),
        FactSpec("recency_score", gettext_lazy("Recency score (1–5)"), ValueType.NUMBER),
        FactSpec("frequency_score", gettext_lazy("Frequency score (1–5)"), ValueType.NUMBER),
        FactSpec("monetary_score", gettext_lazy("Monetary score (1–5)"), ValueType.NUMBER),
    )
}


def _facts_clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    _unknown_keys(condition, FACTS.keys, path, errors)
    field_name = condition.get("field")
    spec = FACT_FIELDS.get(field_name) if isinstance(field_name, str) else None
    return _clean_field_condition(condition, ctx, path, errors, spec, _("a purchase fact"))


def _facts_compile(condition: dict[str, Any], ctx: RuleContext) -> Q:
    spec = FACT_FIELDS[condition["field"]]
    return predicate(spec.operand(ctx), condition["operator"], condition.get("value"), ctx.clock)


FACTS = ConditionKind(
    name="facts",
    label=gettext_lazy("Purchase facts"),
    keys=frozenset({"field", "operator", "value"}),
    clean=_facts_clean,
    compile=_facts_compile,
    describe=lambda condition, ctx: _describe_comparison(
        str(FACT_FIELDS[condition["field"]].label),
        FACT_FIELDS[condition["field"]].type,
        condition["operator"],
        condition.get("value"),
    ),
    schema=lambda ctx: {"fields": [spec.schema() for spec in FACT_FIELDS.values()]},
    time_relative=lambda condition: is_time_relative(condition.get("operator", "")),
)


# --- RFM segment and lifecycle stage --------------------------------------------------------


def _stage_kind(name: str, label: Any, column: str, default: str, choices: Any) -> ConditionKind:
    """A named group a contact is in (its facts row's RFM segment or lifecycle stage)."""
    labels = dict(choices.choices)

    def operand() -> Operand:
        expr = Coalesce(F(f"facts__{column}"), Value(default), output_field=CharField())
        return column_operand(expr, ValueType.CHOICE, nullable=False, choices=choices.values)

    def clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
        _unknown_keys(condition, frozenset({"operator", "value"}), path, errors)
        operator = condition.get("operator", Op.IN)
        if operator not in (Op.IN, Op.NOT_IN):
            errors.add(at(path, "operator"), _("%(operator)r is not in / not_in.") % {"operator": operator})
            return {"kind": name, "operator": operator, "value": None}
        value = clean_value(
            ValueType.CHOICE, operator, condition.get("value"), at(path, "value"), errors, choices.values
        )
        return {"kind": name, "operator": operator, "value": value}

    def describe(condition: dict[str, Any], ctx: RuleContext) -> str:
        names = ", ".join(str(labels.get(v, v)) for v in condition["value"] or [])
        return _describe_comparison(str(label), ValueType.CHOICE, condition["operator"], names)

    return ConditionKind(
        name=name,
        label=label,
        keys=frozenset({"operator", "value"}),
        clean=clean,
        compile=lambda condition, ctx: predicate(operand(), condition["operator"], condition["value"], ctx.clock),
        describe=describe,
        schema=lambda ctx: {"choices": [{"value": v, "label": str(text)} for v, text in choices.choices]},
    )


RFM_SEGMENT = _stage_kind("rfm_segment", gettext_lazy("RFM segment"), "rfm_segment", "", RfmSegment)
LIFECYCLE_STAGE = _stage_kind(
    "lifecycle_stage", gettext_lazy("Lifecycle stage"), "lifecycle_stage", LifecycleStage.PROSPECT, LifecycleStage
)
