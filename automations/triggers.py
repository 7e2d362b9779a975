"""What enrolls a contact in a series, checked.

    {"type": "event", "event": "Checkout Started", "where": [{"property": "total", "operator": "gt", "value": 50}],
     "key": "cart_id"}                                   # key: the property that tells entries apart
    {"type": "list", "list": 3}                          # joined a list (confirmed, on double opt-in)
    {"type": "segment", "segment": 7, "on": "enter" | "exit"}
    {"type": "promo", "at": "2026-12-24T09:00:00+01:00", "segment": 7 | "list": 3}   # everyone once, at a time
    {"type": "api"}                                      # POST /api/v1/series/{id}/enrollments only

Every series can also be entered through the API, whatever its trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from audiences.models import MailingList, Segment
from audiences.segments.event_conditions import clean_property_filters
from audiences.segments.values import RuleErrors
from automations.steps.common import clean_id
from automations.steps.registry import CleanContext

MAX_KEY = 100


def _clean_event(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    event = raw.get("event")
    cleaned: dict[str, Any] = {"type": "event"}
    if not isinstance(event, str) or not event.strip() or len(event) > 200:
        errors.add("trigger.event", _("Name the event that starts the series (at most 200 characters)."))
    else:
        cleaned["event"] = event.strip()
    cleaned["where"] = clean_property_filters(raw.get("where"), "trigger.where", errors)
    key = raw.get("key") or ""
    if not isinstance(key, str) or len(key) > MAX_KEY:
        errors.add("trigger.key", _("Expected the name of an event property."))
    elif key:
        cleaned["key"] = key.strip()
    return cleaned


def _lists(ctx: CleanContext) -> set[int]:
    return ctx.cached(
        "lists", lambda: set(MailingList.objects.in_workspace(ctx.workspace).values_list("pk", flat=True))
    )


def _segments(ctx: CleanContext) -> set[int]:
    return ctx.cached("segments", lambda: set(Segment.objects.in_workspace(ctx.workspace).values_list("pk", flat=True)))


def _clean_list(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    found = clean_id(raw.get("list"), "trigger.list", errors, _lists(ctx), _("No such list."))
    return {"type": "list", "list": found}


def _clean_segment(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    found = clean_id(raw.get("segment"), "trigger.segment", errors, _segments(ctx), _("No such segment."))
    on = raw.get("on", "enter")
    if on not in ("enter", "exit"):
        errors.add("trigger.on", _("Expected enter or exit."))
    return {"type": "segment", "segment": found, "on": on}


def _clean_promo(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    cleaned: dict[str, Any] = {"type": "promo"}
    at = raw.get("at")
    when = parse_datetime(at) if isinstance(at, str) else None
    if when is None or when.tzinfo is None:
        errors.add("trigger.at", _("Expected a date and time with its offset, e.g. 2026-12-24T09:00:00+01:00."))
    else:
        cleaned["at"] = when.isoformat()
    if ("segment" in raw) == ("list" in raw):
        errors.add("trigger", _("Name either a segment or a list as the promo's audience."))
    elif "segment" in raw:
        cleaned["segment"] = clean_id(raw["segment"], "trigger.segment", errors, _segments(ctx), _("No such segment."))
    else:
        cleaned["list"] = clean_id(raw["list"], "trigger.list", errors, _lists(ctx), _("No such list."))
    return cleaned


def _clean_api(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    return {"type": "api"}


TRIGGER_KINDS: dict[
    str, tuple[frozenset[str], Callable[[dict[str, Any], CleanContext, RuleErrors], dict[str, Any]]]
] = {
    "event": (frozenset({"event", "where", "key"}), _clean_event),
    "list": (frozenset({"list"}), _clean_list),
    "segment": (frozenset({"segment", "on"}), _clean_segment),
    "promo": (frozenset({"at", "segment", "list"}), _clean_promo),
    "api": (frozenset(), _clean_api),
}


def register_trigger_kind(
    name: str, keys: frozenset[str], clean: Callable[[dict[str, Any], CleanContext, RuleErrors], dict[str, Any]]
) -> None:
    TRIGGER_KINDS[name] = (keys, clean)


def clean_trigger(raw: Any, ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in TRIGGER_KINDS:
        errors.add("trigger.type", _("Expected one of: %(allowed)s.") % {"allowed": ", ".join(TRIGGER_KINDS)})
        return {}
    keys, clean = TRIGGER_KINDS[raw["type"]]
    for unknown in sorted(set(raw) - keys - {"type"}):
        errors.add(f"trigger.{unknown}", _("Unknown field %(field)r for this trigger.") % {"field": unknown})
    return clean(raw, ctx, errors)


def clean_goal(raw: Any, ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    """{"event": "Order Completed", "where": […], "key": "cart_id"} or empty for no goal."""
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        errors.add("goal", _("Expected an object naming the goal event, or nothing."))
        return {}
    for unknown in sorted(set(raw) - {"event", "where", "key"}):
        errors.add(f"goal.{unknown}", _("Unknown field %(field)r for a goal.") % {"field": unknown})
    event = raw.get("event")
    cleaned: dict[str, Any] = {}
    if not isinstance(event, str) or not event.strip() or len(event) > 200:
        errors.add("goal.event", _("Name the goal event (at most 200 characters)."))
    else:
        cleaned["event"] = event.strip()
    cleaned["where"] = clean_property_filters(raw.get("where"), "goal.where", errors)
    key = raw.get("key") or ""
    if not isinstance(key, str) or len(key) > MAX_KEY:
        errors.add("goal.key", _("Expected the name of an event property."))
    elif key:
        cleaned["key"] = key.strip()
    return cleaned
