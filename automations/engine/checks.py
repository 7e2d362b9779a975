"""What is checked at entry, before every send step and again at send time: the series' flow
filter and its goal. Set-based over a group of enrollments of one series."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import formats

from audiences.models import Event
from audiences.segments.compiler import segment_queryset
from audiences.segments.event_conditions import property_filters_q
from audiences.segments.registry import RuleContext
from automations.models import Series


def has_flow_filter(series: Series) -> bool:
    return bool(series.flow_filter and series.flow_filter.get("conditions"))


def flow_filter_matches(series: Series, contact_ids: set[int], now: dt.datetime) -> set[int]:
    """The contacts among these that match the series' flow filter now (one query)."""
    if not has_flow_filter(series) or not contact_ids:
        return set(contact_ids)
    ctx = RuleContext(series.workspace, now=now, contact_ids=sorted(contact_ids))
    matching = segment_queryset(workspace=series.workspace, rules=series.flow_filter, context=ctx, now=now)
    return set(matching.filter(pk__in=contact_ids).values_list("pk", flat=True))


def goal_events(series: Series, contact_ids: set[int], since: dt.datetime, now: dt.datetime) -> list[Event]:
    """The goal events of these contacts from `since` on (one query on the contact index)."""
    goal = series.goal or {}
    if not goal.get("event") or not contact_ids:
        return []
    ctx = RuleContext(series.workspace, now=now)
    return list(
        Event.objects.filter(
            property_filters_q(goal.get("where") or [], ctx.clock),
            workspace_id=series.workspace_id,
            contact_id__in=contact_ids,
            name=goal["event"],
            occurred_at__gte=since,
            occurred_at__lte=now,  # not after the engine's now (a replay of history)
        ).only("id", "contact_id", "occurred_at", "properties", "name")
    )


def goal_matches(series: Series, event: Event, contact_id: int, entry_key: str, entered_at: dt.datetime) -> bool:
    """Whether this goal event (already filtered by name and properties) ends this enrollment:
    the same contact, after the entry, and — for a keyed goal — the same key."""
    if event.contact_id != contact_id or event.occurred_at < entered_at:
        return False
    key_property = (series.goal or {}).get("key")
    if key_property:
        return property_text(event.properties, key_property) == entry_key
    return True


def goal_reason(event: Event) -> str:
    return f"goal {event.name} at {formats.date_format(event.occurred_at, 'Y-m-d H:i')}"


def property_text(properties: Any, name: str) -> str:
    """An event property as the text an entry key is compared with ("" when missing)."""
    if not isinstance(properties, dict) or name not in properties:
        return ""
    value = properties[name]
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:200]
