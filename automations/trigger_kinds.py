"""The trigger kinds added to automations/triggers.py's table: a lifecycle stage or RFM segment
reached, and a date of the contact.

    {"type": "lifecycle", "stage": "at_risk"}            # became "at risk" (audiences' stages)
    {"type": "rfm", "segment": "cant_lose_them"}         # moved into an RFM segment
    {"type": "date", "attribute": "birth_date" | <custom date field>, "offset_days": 0, "time": "09:00"}
        # every year on the date's anniversary (± days) at a local time
    {"type": "date", "attribute": "predicted_next_order", "offset_days": -7, "time": "10:00"}
        # a week before the customer's predicted next order (replenishment)

Times are the contact's wall-clock time (their zone, else the workspace's). How they enroll:
automations/engine/stages.py and automations/engine/dates.py.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from audiences.models import LifecycleStage, RfmSegment
from audiences.segments.values import RuleErrors
from automations.steps.registry import CleanContext
from automations.steps.wait_until import clean_offset, clean_time, date_fields
from automations.triggers import register_trigger_kind

PREDICTED_NEXT_ORDER = "predicted_next_order"


def _clean_lifecycle(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    stage = raw.get("stage")
    if stage not in LifecycleStage.values:
        errors.add("trigger.stage", _("Expected one of: %(allowed)s.") % {"allowed": ", ".join(LifecycleStage.values)})
    return {"type": "lifecycle", "stage": stage}


def _clean_rfm(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    segment = raw.get("segment")
    if segment not in RfmSegment.values:
        errors.add("trigger.segment", _("Expected one of: %(allowed)s.") % {"allowed": ", ".join(RfmSegment.values)})
    return {"type": "rfm", "segment": segment}


def _clean_date(raw: dict[str, Any], ctx: CleanContext, errors: RuleErrors) -> dict[str, Any]:
    attribute = raw.get("attribute")
    if attribute != PREDICTED_NEXT_ORDER and attribute not in date_fields(ctx):
        errors.add(
            "trigger.attribute", _("Expected birth_date, predicted_next_order or the key of a custom date field.")
        )
    return {
        "type": "date",
        "attribute": attribute,
        "offset_days": clean_offset(raw.get("offset_days"), "trigger.offset_days", errors),
        "time": clean_time(raw.get("time", "09:00"), "trigger.time", errors),
    }


def describe_trigger(trigger: dict[str, Any]) -> str:
    """The trigger in words, for pages and the dry run."""
    kind = trigger.get("type")
    if kind == "lifecycle":
        stage = dict(LifecycleStage.choices).get(str(trigger.get("stage")), trigger.get("stage"))
        return _("the contact's lifecycle stage becomes %(stage)s") % {"stage": stage}
    if kind == "rfm":
        segment = dict(RfmSegment.choices).get(str(trigger.get("segment")), trigger.get("segment"))
        return _("the contact moves into the RFM segment %(segment)s") % {"segment": segment}
    if kind == "date":
        offset, time = int(trigger.get("offset_days") or 0), trigger.get("time", "")
        if trigger.get("attribute") == PREDICTED_NEXT_ORDER:
            what = _("the predicted next order")
        else:
            what = _("each anniversary of %(field)s") % {"field": trigger.get("attribute")}
        if offset:
            return _("%(days)d days %(side)s %(what)s, at %(time)s") % {
                "days": abs(offset),
                "side": _("before") if offset < 0 else _("after"),
                "what": what,
                "time": time,
            }
        return _("on %(what)s, at %(time)s") % {"what": what, "time": time}
    return ""


def register() -> None:
    register_trigger_kind("lifecycle", frozenset({"stage"}), _clean_lifecycle)
    register_trigger_kind("rfm", frozenset({"segment"}), _clean_rfm)
    register_trigger_kind("date", frozenset({"attribute", "offset_days", "time"}), _clean_date)
