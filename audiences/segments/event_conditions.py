"""The event condition: whether a contact did something (a number of times, with property
filters, in a period), from the event store or, when it can answer, RecentEvent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audiences.models import Event, RecentEvent
from audiences.segments.condition_helpers import _describe_comparison, _did, _unknown_keys
from audiences.segments.registry import ConditionKind, RuleContext
from audiences.segments.values import (
    FALSE,
    TRUE,
    Clock,
    Op,
    Operand,
    RuleErrors,
    ValueType,
    at,
    clean_value,
    days_value,
    json_operand,
    operator_label,
    predicate,
)

MAX_WHERE = 20
MAX_COUNT = 1_000_000
MAX_NAME = 200
MAX_PROPERTY = 100

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
    return events.filter(property_filters_q(condition["where"], ctx.clock))


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


# --- property filters for the layers above (series triggers, goals, waits) -----------------


def clean_property_filters(where: Any, path: str, errors: RuleErrors) -> list[dict[str, Any]]:
    """A list of event property filters ([{"property", "operator", "value"}]) checked and
    normalised the way a segment's event condition checks its `where`."""
    return _clean_where(where, path, errors)


def property_filters_q(where: list[dict[str, Any]], clock: Clock, *, field: str = "properties") -> Q:
    """Checked property filters as one predicate over Event (or over another model's JSON
    column holding event properties, named by `field`), compiled as segments compile them."""
    combined = Q()
    for item in where:
        value_type = _property_type(item["operator"], item["value"])
        operand = json_operand(field, item["property"], value_type, tz=clock.tz)
        combined &= predicate(operand, item["operator"], item["value"], clock)
    return combined
