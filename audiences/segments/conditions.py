"""The built-in kinds of segment condition (see registry.py for the contract).

    attribute        {"kind": "attribute", "field": "country" | "attributes.<key>", "operator", "value"}
    list             {"kind": "list", "operator": "in" | "not_in", "list_id": 3, "status": "" | "subscribed" | ...}
    tag              {"kind": "tag", "operator": "in" | "not_in" | "contains" | "is_set" | "not_set", "value": [...]}
    consent          {"kind": "consent", "did": true, "action": "confirmed", "list_id": null | 3}
    event            {"kind": "event", "did": true, "name": "Order Completed",
                      "where": [{"property": "total", "operator": "gt", "value": 50}],
                      "count_operator": "gte" | "lte" | "eq", "count": 2,
                      "period": "ever" | "in_last_days" | "between", "days": 30, "from": "…", "to": "…"}
    facts            {"kind": "facts", "field": "orders_count" | ..., "operator", "value"}
    rfm_segment      {"kind": "rfm_segment", "operator": "in" | "not_in", "value": ["champions", ...]}
    lifecycle_stage  {"kind": "lifecycle_stage", "operator": "in" | "not_in", "value": ["loyal", ...]}

Field names and operators come only from the whitelists below; values become bound parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import (
    CharField,
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audiences.models import (
    ConsentAction,
    ConsentRecord,
    Event,
    FieldType,
    Gender,
    LifecycleStage,
    RecentEvent,
    RfmSegment,
    Subscription,
    SubscriptionStatus,
)
from audiences.segments.registry import ConditionKind, RuleContext, register_condition_kind
from audiences.segments.values import (
    FALSE,
    TRUE,
    Op,
    Operand,
    RuleErrors,
    ValueType,
    at,
    clean_operator,
    clean_value,
    column_operand,
    days_value,
    is_time_relative,
    json_operand,
    operator_label,
    predicate,
)

MAX_WHERE = 20
MAX_COUNT = 1_000_000
MAX_NAME = 200
MAX_PROPERTY = 100


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
    if isinstance(value, bool) or not str(value).isdigit() or int(value) not in ctx.lists:
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


def _did(value: Any, path: str, errors: RuleErrors) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        errors.add(path, _("Expected true or false."))
        return True
    return value


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


# --- events ---------------------------------------------------------------------------------

COUNT_OPERATORS = (Op.GTE, Op.LTE, Op.EQ)
PERIODS = ("ever", "in_last_days", "between")
PROPERTY_OPERATORS = (
    Op.EQ, Op.NEQ, Op.CONTAINS, Op.STARTS_WITH, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN, Op.IN, Op.NOT_IN,
    Op.IS_SET, Op.NOT_SET,
)  # fmt: skip
NUMERIC_PROPERTY_OPERATORS = (Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN)


def _property_type(operator: str, value: Any) -> ValueType:
    """An event property has no declared type: the rule's value says how to compare (50 as a
    number, "50" as text, true as yes/no)."""
    if operator in NUMERIC_PROPERTY_OPERATORS:
        return ValueType.NUMBER
    items = value if isinstance(value, list) else [value]
    if items and all(isinstance(item, bool) for item in items) and operator in (Op.EQ, Op.NEQ):
        return ValueType.BOOLEAN
    if items and all(isinstance(item, int | float) and not isinstance(item, bool) for item in items):
        return ValueType.NUMBER
    return ValueType.TEXT


def _clean_where(where: Any, path: str, errors: RuleErrors) -> list[dict[str, Any]]:
    if where in (None, []):
        return []
    if not isinstance(where, list) or len(where) > MAX_WHERE:
        errors.add(
            path,
            ngettext(
                "Expected a list of at most %(max)d property filter.",
                "Expected a list of at most %(max)d property filters.",
                MAX_WHERE,
            )
            % {"max": MAX_WHERE},
        )
        return []
    cleaned = []
    for index, item in enumerate(where):
        item_path = at(path, index)
        if not isinstance(item, dict):
            errors.add(item_path, _("Expected a property filter."))
            continue
        for key in sorted(set(item) - {"property", "operator", "value"}):
            errors.add(at(item_path, key), _("Unknown key %(key)r for this kind of condition.") % {"key": key})
        name = item.get("property")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_PROPERTY:
            errors.add(
                at(item_path, "property"),
                ngettext(
                    "Name the property (at most %(max)d character).",
                    "Name the property (at most %(max)d characters).",
                    MAX_PROPERTY,
                )
                % {"max": MAX_PROPERTY},
            )
            continue
        operator = item.get("operator")
        if operator not in PROPERTY_OPERATORS:
            errors.add(
                at(item_path, "operator"),
                _("%(operator)r is not an operator for event properties; use one of: %(allowed)s.")
                % {"operator": operator, "allowed": ", ".join(PROPERTY_OPERATORS)},
            )
            continue
        value_type = _property_type(operator, item.get("value"))
        value = clean_value(value_type, operator, item.get("value"), at(item_path, "value"), errors)
        cleaned.append({"property": name.strip(), "operator": operator, "value": value})
    return cleaned


def _event_clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    _unknown_keys(condition, EVENT.keys, path, errors)
    name = condition.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        errors.add(
            at(path, "name"),
            ngettext(
                "Name the event (at most %(max)d character).", "Name the event (at most %(max)d characters).", MAX_NAME
            )
            % {"max": MAX_NAME},
        )
        name = None
    count_operator = condition.get("count_operator", Op.GTE)
    if count_operator not in COUNT_OPERATORS:
        errors.add(
            at(path, "count_operator"),
            _("%(operator)r is not one of: %(allowed)s.")
            % {"operator": count_operator, "allowed": ", ".join(COUNT_OPERATORS)},
        )
    count = condition.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        errors.add(at(path, "count"), _("Expected a whole number from 0 to %(max)d.") % {"max": MAX_COUNT})
        count = 1
    period = condition.get("period", "ever")
    cleaned: dict[str, Any] = {
        "kind": "event",
        "did": _did(condition.get("did"), at(path, "did"), errors),
        "name": name.strip() if name else name,
        "where": _clean_where(condition.get("where"), at(path, "where"), errors),
        "count_operator": count_operator,
        "count": count,
        "period": period,
    }
    if period == "in_last_days":
        cleaned["days"] = days_value(condition.get("days"), at(path, "days"), errors)
    elif period == "between":
        start = clean_value(ValueType.DATETIME, Op.EQ, condition.get("from"), at(path, "from"), errors)
        end = clean_value(ValueType.DATETIME, Op.EQ, condition.get("to"), at(path, "to"), errors)
        if start and end and _window_start(start) > _window_start(end):
            errors.add(at(path, "to"), _("The end must not be before the start."))
        cleaned["from"], cleaned["to"] = start, end
    elif period != "ever":
        errors.add(at(path, "period"), _("%(period)r is not one of: %(allowed)s.") % {
            "period": period, "allowed": ", ".join(PERIODS)
        })  # fmt: skip
    return cleaned


def _window_start(value: str) -> dt.datetime:
    if "T" in value:
        return dt.datetime.fromisoformat(value)
    return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)


def _event_window(condition: dict[str, Any], ctx: RuleContext) -> Q:
    if condition["period"] == "in_last_days":
        return Q(occurred_at__gte=ctx.clock.now - dt.timedelta(days=condition["days"]))
    if condition["period"] == "between":
        operand = Operand(ValueType.DATETIME, F("occurred_at"), TRUE)
        return predicate(operand, Op.BETWEEN, [condition["from"], condition["to"]], ctx.clock)
    return Q()


def _events(condition: dict[str, Any], ctx: RuleContext) -> QuerySet[Event]:
    """The condition's events on the (workspace, name, occurred_at) index. Events not yet tied
    to a contact are left out: a NULL in the subquery would turn NOT IN into "unknown"."""
    events = Event.objects.filter(
        _event_window(condition, ctx), workspace_id=ctx.workspace.pk, name=condition["name"], contact_id__isnull=False
    )
    if ctx.contact_ids is not None:
        # An incremental refresh: group these contacts' events (on the (contact, occurred_at)
        # index), not the whole workspace's, to answer for them.
        events = events.filter(contact_id__in=ctx.contact_ids)
    for item in condition["where"]:
        value_type = _property_type(item["operator"], item["value"])
        operand = json_operand("properties", item["property"], value_type, tz=ctx.clock.tz)
        events = events.filter(predicate(operand, item["operator"], item["value"], ctx.clock))
    return events


def _event_compile(condition: dict[str, Any], ctx: RuleContext) -> Q:
    """Whether a contact "did X (count op N)" is one of: everyone, nobody, "has such events" (optionally at least
    N of them), or the complement of one of those — so "at most N" and "exactly 0" include the
    contacts with no events at all. "did not" flips it."""
    n, operator = condition["count"], condition["count_operator"]
    if operator == Op.GTE:
        mode, threshold = ("all", 0) if n == 0 else ("in", n)
    elif operator == Op.LTE:
        mode, threshold = "not_in", n + 1
    else:  # eq
        mode, threshold = ("not_in", 1) if n == 0 else ("eq", n)
    if not condition["did"]:
        mode = {"all": "none", "in": "not_in", "not_in": "in", "eq": "not_eq"}[mode]
    if mode in ("all", "none"):
        return TRUE if mode == "all" else FALSE
    recent = _recent_compile(condition, ctx, mode, threshold)
    if recent is not None:
        return recent
    events = _events(condition, ctx)
    if mode in ("in", "not_in") and threshold == 1:
        # At least one: a semi-join (or anti-join) straight on the index range.
        has = Q(Exists(events.filter(contact_id=OuterRef("pk"))))
        return has if mode == "in" else ~has
    if mode in ("in", "eq"):
        # contact id IN (SELECT contact_id … GROUP BY contact_id HAVING count(*) op N): one
        # range scan of the index, aggregated, hash-joined with the contacts.
        lookup = "n__gte" if mode == "in" else "n"
        grouped = events.values("contact_id").annotate(n=Count("*")).filter(**{lookup: threshold})
        return Q(pk__in=grouped.values("contact_id"))
    # The complements: NOT EXISTS per contact on the (contact, occurred_at) index. NOT IN over
    # a large grouped set would fall back to a rescan per row when it outgrows work_mem.
    lookup = "n__gte" if mode == "not_in" else "n"
    per_contact = events.filter(contact_id=OuterRef("pk")).values("contact_id").annotate(n=Count("*"))
    return ~Q(Exists(per_contact.filter(**{lookup: threshold})))


def _recent_compile(condition: dict[str, Any], ctx: RuleContext, mode: str, threshold: int) -> Q | None:
    """The same answer from RecentEvent, when it can give it: "at least N in the window" is
    "the N-th most recent is in the window", one index row per contact instead of a group of
    events. None when the condition needs the events (property filters, a fixed period, a
    count beyond the depth kept) or the workspace's rows are not complete."""
    from audiences.recent_events import RECENT_EVENT_DEPTH

    deepest = threshold + 1 if mode in ("eq", "not_eq") else threshold
    if condition["where"] or condition["period"] == "between" or deepest > RECENT_EVENT_DEPTH:
        return None
    if not ctx.recent_events_built:
        return None
    rows = RecentEvent.objects.filter(workspace_id=ctx.workspace.pk, name=condition["name"])
    if condition["period"] == "in_last_days":
        rows = rows.filter(occurred_at__gte=ctx.clock.now - dt.timedelta(days=condition["days"]))
    if ctx.contact_ids is not None:
        rows = rows.filter(contact_id__in=ctx.contact_ids)

    def reached(nth: int) -> Q:
        return Q(Exists(rows.filter(nth=nth, contact_id=OuterRef("pk"))))

    if mode == "in":
        return reached(threshold)
    if mode == "not_in":
        return ~reached(threshold)
    exactly = reached(threshold) & ~reached(threshold + 1)
    return exactly if mode == "eq" else ~exactly


def _event_describe(condition: dict[str, Any], ctx: RuleContext) -> str:
    n, operator = condition["count"], condition["count_operator"]
    if operator == Op.GTE:
        times = ngettext("at least %(n)d time", "at least %(n)d times", n) % {"n": n}
    elif operator == Op.LTE:
        times = ngettext("at most %(n)d time", "at most %(n)d times", n) % {"n": n}
    else:
        times = ngettext("exactly %(n)d time", "exactly %(n)d times", n) % {"n": n}
    verb = _("did") if condition["did"] else _("did not do")
    parts = [f"{verb} “{condition['name']}”"]
    if not (operator == Op.GTE and n == 1):  # "did X" says "at least once" by itself
        parts.append(times)
    if condition["where"]:
        filters = [
            _describe_comparison(
                item["property"], _property_type(item["operator"], item["value"]), item["operator"], item["value"]
            )
            for item in condition["where"]
        ]
        parts.append(_("where %(filters)s") % {"filters": _(" and ").join(filters)})
    if condition["period"] == "in_last_days":
        parts.append(
            ngettext("in the last %(days)d day", "in the last %(days)d days", condition["days"])
            % {"days": condition["days"]}
        )
    elif condition["period"] == "between":
        parts.append(_("between %(start)s and %(end)s") % {"start": condition["from"], "end": condition["to"]})
    else:
        parts.append(_("ever"))
    return " ".join(parts)


def _event_schema(ctx: RuleContext) -> dict[str, Any]:
    from audiences.segments.selectors import event_names

    return {
        "names": event_names(workspace=ctx.workspace),
        "count_operators": [
            {"value": Op.GTE, "label": _("at least")},
            {"value": Op.LTE, "label": _("at most")},
            {"value": Op.EQ, "label": _("exactly")},
        ],
        "property_operators": [{"value": op, "label": operator_label(ValueType.TEXT, op)} for op in PROPERTY_OPERATORS],
    }


EVENT = ConditionKind(
    name="event",
    label=gettext_lazy("Event"),
    keys=frozenset({"did", "name", "where", "count_operator", "count", "period", "days", "from", "to"}),
    clean=_event_clean,
    compile=_event_compile,
    describe=_event_describe,
    schema=_event_schema,
    time_relative=lambda condition: condition.get("period") == "in_last_days",
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

for _kind in (ATTRIBUTE, LIST, TAG, CONSENT, EVENT, FACTS, RFM_SEGMENT, LIFECYCLE_STAGE):
    register_condition_kind(_kind)
