"""Conditions on a contact's own data: its fields (attribute), its lists, tags and consent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.models import ConsentAction, ConsentRecord, FieldType, Gender, Subscription, SubscriptionStatus
from audiences.segments.condition_helpers import _describe_comparison, _did, _unknown_keys
from audiences.segments.registry import ConditionKind, RuleContext
from audiences.segments.values import (
    Op,
    Operand,
    RuleErrors,
    ValueType,
    at,
    clean_operator,
    clean_value,
    column_operand,
    is_time_relative,
    json_operand,
    predicate,
)
from esp.input import parse_id

# --- fields: a whitelisted name, its label, type and SQL operand ----------------------------


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: Any
    type: ValueType
    choices: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        return {"value": self.name, "label": str(self.label), "type": self.type.value, "choices": list(self.choices)}


CONTACT_FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("email", gettext_lazy("Email address"), ValueType.TEXT),
        FieldSpec("first_name", gettext_lazy("First name"), ValueType.TEXT),
        FieldSpec("last_name", gettext_lazy("Last name"), ValueType.TEXT),
        FieldSpec("country", gettext_lazy("Country (ISO code)"), ValueType.TEXT),
        FieldSpec("city", gettext_lazy("City"), ValueType.TEXT),
        FieldSpec("gender", gettext_lazy("Gender"), ValueType.CHOICE, tuple(Gender.values)),
        FieldSpec("birth_date", gettext_lazy("Birth date"), ValueType.DATE),
        FieldSpec("phone", gettext_lazy("Phone"), ValueType.TEXT),
        FieldSpec("locale", gettext_lazy("Locale"), ValueType.TEXT),
        FieldSpec("time_zone", gettext_lazy("Time zone"), ValueType.TEXT),
        FieldSpec("external_id", gettext_lazy("External id"), ValueType.TEXT),
        FieldSpec("source", gettext_lazy("Source"), ValueType.TEXT),
        FieldSpec("created_at", gettext_lazy("Added"), ValueType.DATETIME),
        FieldSpec("updated_at", gettext_lazy("Last changed"), ValueType.DATETIME),
    )
}
NULLABLE_CONTACT_FIELDS = frozenset({"birth_date"})
CUSTOM_PREFIX = "attributes."
CUSTOM_TYPES = {
    FieldType.TEXT: ValueType.TEXT,
    FieldType.NUMBER: ValueType.NUMBER,
    FieldType.DECIMAL: ValueType.NUMBER,
    FieldType.DATE: ValueType.DATE,
    FieldType.DATETIME: ValueType.DATETIME,
    FieldType.BOOLEAN: ValueType.BOOLEAN,
    FieldType.CHOICE: ValueType.CHOICE,
}


def _contact_field(name: Any, ctx: RuleContext) -> FieldSpec | None:
    if not isinstance(name, str):
        return None
    if name in CONTACT_FIELDS:
        return CONTACT_FIELDS[name]
    if name.startswith(CUSTOM_PREFIX):
        custom = ctx.custom_fields.get(name.removeprefix(CUSTOM_PREFIX))
        if custom is not None:
            return FieldSpec(name, custom.label, CUSTOM_TYPES[FieldType(custom.type)], tuple(custom.choices))
    return None


def _contact_operand(spec: FieldSpec, ctx: RuleContext) -> Operand:
    if spec.name.startswith(CUSTOM_PREFIX):
        key = spec.name.removeprefix(CUSTOM_PREFIX)
        return json_operand("attributes", key, spec.type, choices=spec.choices, tz=ctx.clock.tz)
    return column_operand(
        spec.name,
        spec.type,
        nullable=spec.name in NULLABLE_CONTACT_FIELDS,
        choices=spec.choices,
        casefold=spec.name == "email",
        tz=ctx.clock.tz,
    )


def _clean_field_condition(
    condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors, spec: FieldSpec | None, noun: str
) -> dict[str, Any]:
    """field → operator → value, checked in that order (an unknown field has no operators)."""
    cleaned: dict[str, Any] = {"kind": condition["kind"], "field": condition.get("field")}
    if spec is None:
        errors.add(at(path, "field"), _("%(field)r is not %(noun)s.") % {"field": condition.get("field"), "noun": noun})
        return cleaned
    operator = clean_operator(spec.type, condition.get("operator"), at(path, "operator"), errors)
    cleaned["operator"] = operator
    if operator is not None:
        value = clean_value(spec.type, operator, condition.get("value"), at(path, "value"), errors, spec.choices)
        if spec.name == "country" and isinstance(value, str):
            value = value.upper()  # stored as ISO codes in capitals
        elif spec.name == "country" and isinstance(value, list):
            value = [item.upper() if isinstance(item, str) else item for item in value]
        cleaned["value"] = value
    return cleaned


# --- attribute ------------------------------------------------------------------------------


def _attribute_clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    _unknown_keys(condition, ATTRIBUTE.keys, path, errors)
    spec = _contact_field(condition.get("field"), ctx)
    return _clean_field_condition(condition, ctx, path, errors, spec, _("a contact field"))


def _attribute_compile(condition: dict[str, Any], ctx: RuleContext) -> Q:
    spec = _contact_field(condition["field"], ctx)
    assert spec is not None  # checked by clean
    return predicate(_contact_operand(spec, ctx), condition["operator"], condition.get("value"), ctx.clock)


def _attribute_describe(condition: dict[str, Any], ctx: RuleContext) -> str:
    spec = _contact_field(condition["field"], ctx)
    label = str(spec.label) if spec else condition["field"]
    value_type = spec.type if spec else ValueType.TEXT
    return _describe_comparison(label, value_type, condition["operator"], condition.get("value"))


def _attribute_schema(ctx: RuleContext) -> dict[str, Any]:
    custom = [
        FieldSpec(f"{CUSTOM_PREFIX}{f.key}", f.label, CUSTOM_TYPES[FieldType(f.type)], tuple(f.choices)).schema()
        for f in ctx.custom_fields.values()
    ]
    return {"fields": [spec.schema() for spec in CONTACT_FIELDS.values()] + custom}


ATTRIBUTE = ConditionKind(
    name="attribute",
    label=gettext_lazy("Contact field"),
    keys=frozenset({"field", "operator", "value"}),
    clean=_attribute_clean,
    compile=_attribute_compile,
    describe=_attribute_describe,
    schema=_attribute_schema,
    time_relative=lambda condition: is_time_relative(condition.get("operator", "")),
)


# --- list membership ------------------------------------------------------------------------

LIST_OPERATORS = (Op.IN, Op.NOT_IN)


def _list_id(value: Any, ctx: RuleContext, path: str, errors: RuleErrors, *, required: bool) -> int | None:
    if value in (None, "") and not required:
        return None
    if parse_id(value) not in ctx.lists:
        errors.add(path, _("No such list in this workspace: %(value)r.") % {"value": value})
        return None
    return int(value)


def _list_clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    _unknown_keys(condition, LIST.keys, path, errors)
    operator = condition.get("operator", Op.IN)
    if operator not in LIST_OPERATORS:
        errors.add(at(path, "operator"), _("%(operator)r is not in / not_in.") % {"operator": operator})
    status = condition.get("status") or ""
    if status not in ("", *SubscriptionStatus.values):
        errors.add(
            at(path, "status"),
            _("%(status)r is not a subscription status (%(choices)s).")
            % {"status": status, "choices": ", ".join(SubscriptionStatus.values)},
        )
    list_id = _list_id(condition.get("list_id"), ctx, at(path, "list_id"), errors, required=True)
    return {"kind": "list", "operator": operator, "list_id": list_id, "status": status}


def _list_compile(condition: dict[str, Any], ctx: RuleContext) -> Q:
    subscriptions = Subscription.objects.filter(
        workspace_id=ctx.workspace.pk, mailing_list_id=condition["list_id"], contact_id=OuterRef("pk")
    )
    if condition["status"]:
        subscriptions = subscriptions.filter(status=condition["status"])
    member = Q(Exists(subscriptions))
    return member if condition["operator"] == Op.IN else ~member


def _list_describe(condition: dict[str, Any], ctx: RuleContext) -> str:
    name = ctx.lists.get(condition["list_id"], f"#{condition['list_id']}")
    status = dict(SubscriptionStatus.choices).get(condition["status"], "")
    if condition["operator"] == Op.IN:
        text = _("is on the list %(list)s") % {"list": name}
    else:
        text = _("is not on the list %(list)s") % {"list": name}
    return f"{text} ({str(status).lower()})" if status else text


LIST = ConditionKind(
    name="list",
    label=gettext_lazy("List"),
    keys=frozenset({"operator", "list_id", "status"}),
    clean=_list_clean,
    compile=_list_compile,
    describe=_list_describe,
    schema=lambda ctx: {
        "lists": [{"value": pk, "label": name} for pk, name in sorted(ctx.lists.items(), key=lambda i: i[1])],
        "statuses": [{"value": "", "label": _("any status")}]
        + [{"value": v, "label": str(label)} for v, label in SubscriptionStatus.choices],
    },
)


# --- tags -----------------------------------------------------------------------------------


def _tag_clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    _unknown_keys(condition, TAG.keys, path, errors)
    operator = clean_operator(ValueType.ARRAY, condition.get("operator"), at(path, "operator"), errors)
    value = None
    if operator is not None:
        value = clean_value(ValueType.ARRAY, operator, condition.get("value"), at(path, "value"), errors)
    return {"kind": "tag", "operator": operator, "value": value}


TAG = ConditionKind(
    name="tag",
    label=gettext_lazy("Tag"),
    keys=frozenset({"operator", "value"}),
    clean=_tag_clean,
    compile=lambda condition, ctx: predicate(
        column_operand("tags", ValueType.ARRAY, nullable=False), condition["operator"], condition["value"], ctx.clock
    ),
    describe=lambda condition, ctx: _describe_comparison(
        _("Tags"), ValueType.ARRAY, condition["operator"], condition["value"]
    ),
)


# --- consent --------------------------------------------------------------------------------


def _consent_clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    _unknown_keys(condition, CONSENT.keys, path, errors)
    action = condition.get("action")
    if action not in ConsentAction.values:
        errors.add(
            at(path, "action"),
            _("%(action)r is not a consent action (%(choices)s).")
            % {"action": action, "choices": ", ".join(ConsentAction.values)},
        )
    return {
        "kind": "consent",
        "did": _did(condition.get("did"), at(path, "did"), errors),
        "action": action,
        "list_id": _list_id(condition.get("list_id"), ctx, at(path, "list_id"), errors, required=False),
    }


def _consent_compile(condition: dict[str, Any], ctx: RuleContext) -> Q:
    records = ConsentRecord.objects.filter(
        workspace_id=ctx.workspace.pk, action=condition["action"], contact_id=OuterRef("pk")
    )
    if condition["list_id"] is not None:
        records = records.filter(mailing_list_id=condition["list_id"])
    has = Q(Exists(records))
    return has if condition["did"] else ~has


def _consent_describe(condition: dict[str, Any], ctx: RuleContext) -> str:
    action = str(dict(ConsentAction.choices).get(condition["action"], condition["action"])).lower()
    if condition["list_id"] is not None:
        name = ctx.lists.get(condition["list_id"], f"#{condition['list_id']}")
        text = _("consent “%(action)s” for %(list)s") % {"action": action, "list": name}
    else:
        text = _("consent “%(action)s” for any list") % {"action": action}
    return (_("has %(what)s") if condition["did"] else _("has no %(what)s")) % {"what": text}


CONSENT = ConditionKind(
    name="consent",
    label=gettext_lazy("Consent"),
    keys=frozenset({"did", "action", "list_id"}),
    clean=_consent_clean,
    compile=_consent_compile,
    describe=_consent_describe,
    schema=lambda ctx: {
        "actions": [{"value": v, "label": str(label)} for v, label in ConsentAction.choices],
        "lists": [{"value": pk, "label": name} for pk, name in sorted(ctx.lists.items(), key=lambda i: i[1])],
    },
)
