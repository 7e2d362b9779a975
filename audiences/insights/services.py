"""The shortcut from a cell of the RFM grid (or a named RFM segment, or a lifecycle stage) to a
saved segment: the one write of the insight pages."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from audiences.models import LifecycleStage, RfmSegment, Segment
from audiences.segments.compiler import validate_rules
from audiences.segments.services import segment_save
from esp.models import Workspace


def _rules(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"match": "all", "negate": False, "conditions": list(conditions)}


def rfm_cell_rules(recency: int, frequency: int) -> dict[str, Any]:
    return _rules(
        {"kind": "facts", "field": "recency_score", "operator": "eq", "value": recency},
        {"kind": "facts", "field": "frequency_score", "operator": "eq", "value": frequency},
    )


def rfm_segment_rules(segment: str) -> dict[str, Any]:
    return _rules({"kind": "rfm_segment", "operator": "in", "value": [segment]})


def lifecycle_stage_rules(stage: str) -> dict[str, Any]:
    return _rules({"kind": "lifecycle_stage", "operator": "in", "value": [stage]})


def segment_for_rules(*, workspace: Workspace, name: str, rules: dict[str, Any], description: str = "") -> Segment:
    """The workspace's segment with exactly these rules, or a new one under this name (made
    unique with a number if a segment with other rules already has it). Clicking the same cell
    twice opens the same segment."""
    rules = validate_rules(workspace=workspace, rules=rules)
    existing = Segment.objects.in_workspace(workspace).filter(rules=rules).order_by("pk").first()
    if existing is not None:
        return existing
    # Case-blind, as segment_save compares names.
    taken = {
        taken_name.lower()
        for taken_name in Segment.objects.in_workspace(workspace)
        .filter(name__istartswith=name)
        .values_list("name", flat=True)
    }
    unique, number = name, 2
    while unique.lower() in taken:  # a handful of names at most: the names the marketer kept
        unique, number = f"{name} ({number})", number + 1
    return segment_save(workspace=workspace, name=unique, rules=rules, description=description)


def rfm_cell_segment(*, workspace: Workspace, recency: int, frequency: int) -> Segment:
    return segment_for_rules(
        workspace=workspace,
        name=_("RFM recency %(r)d · frequency %(f)d") % {"r": recency, "f": frequency},
        rules=rfm_cell_rules(recency, frequency),
        description=_("Customers scored %(r)d for recency and %(f)d for frequency (from the RFM page).")
        % {"r": recency, "f": frequency},
    )


def rfm_named_segment(*, workspace: Workspace, segment: str) -> Segment:
    label = dict(RfmSegment.choices)[segment]
    return segment_for_rules(
        workspace=workspace,
        name=_("RFM: %(segment)s") % {"segment": label},
        rules=rfm_segment_rules(segment),
        description=_("Customers in the RFM segment “%(segment)s” (from the RFM page).") % {"segment": label},
    )


def lifecycle_stage_segment(*, workspace: Workspace, stage: str) -> Segment:
    label = dict(LifecycleStage.choices)[stage]
    return segment_for_rules(
        workspace=workspace,
        name=_("Lifecycle: %(stage)s") % {"stage": label},
        rules=lifecycle_stage_rules(stage),
        description=_("Contacts in the lifecycle stage “%(stage)s” (from the lifecycle page).") % {"stage": label},
    )
