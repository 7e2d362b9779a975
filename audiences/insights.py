"""Reads of the RFM and lifecycle pages and of a contact's purchases, and the shortcut from a
cell of the RFM grid (or a named RFM segment, or a lifecycle stage) to a saved segment.

The pages' numbers are InsightFigures, stored by the scoring job (insight_figures_refresh, one
scan of the workspace's CustomerFacts) rather than aggregated on every page load; every read
takes the workspace and filters by it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.behaviour import CustomerFacts, InsightFigures, LifecycleStage, RfmSegment, Segment
from audiences.facts import RFM_SEGMENT_GRID
from audiences.models import Contact
from esp.models import Workspace

SCORES = (1, 2, 3, 4, 5)

# --- RFM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridCell:
    recency: int
    frequency: int
    count: int
    share: float  # of the scored customers, 0..1
    intensity: int  # 0..100, relative to the fullest cell (the colour of the cell)
    segments: tuple[str, ...]  # the named segments its customers fall into (by their monetary score)


@dataclass(frozen=True)
class GridRow:
    recency: int
    cells: list[GridCell]


@dataclass(frozen=True)
class SegmentSummary:
    segment: str
    label: str
    count: int
    average_revenue: Decimal | None


@dataclass(frozen=True)
class FrequencyColumn:
    """What a frequency score stands for: the orders of its customers. A score no customer
    has is a column left empty by ties (see facts.py: equal values share the lowest tile)."""

    score: int
    min_orders: int | None
    max_orders: int | None


@dataclass(frozen=True)
class RfmOverview:
    rows: list[GridRow]  # recency 5 (top) to 1
    segments: list[SegmentSummary]
    scored: int
    columns: list[FrequencyColumn]
    computed_at: datetime | None
    # When ties leave columns empty: the share (%) of scored customers in F1, and their orders.
    tied_percent: int | None = None
    tied_orders: int | None = None


def _segments_of_cell(recency: int, frequency: int) -> tuple[str, ...]:
    """Named segments reachable from an (R, F) cell for monetary scores 1..5, in table order."""
    names: list[str] = []
    for monetary in SCORES:
        name = str(RFM_SEGMENT_GRID[recency][(frequency + monetary + 1) // 2 - 1])
        if name not in names:
            names.append(name)
    return tuple(names)


def insight_figures_refresh(*, workspace_id: int, scored_at: datetime | None = None) -> InsightFigures:
    """Compute and store the figures of the RFM and lifecycle pages: one scan of the
    workspace's facts (grouping sets), one count of its contacts. Run by the scoring job."""
    from audiences.facts import workspace_interval

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT GROUPING(recency_score, frequency_score, rfm_segment, lifecycle_stage),
                   recency_score, frequency_score, rfm_segment, lifecycle_stage,
                   count(*), avg(revenue), min(orders_count), max(orders_count)
            FROM audiences_customerfacts
            WHERE workspace_id = %s
            GROUP BY GROUPING SETS ((recency_score, frequency_score), (rfm_segment), (lifecycle_stage))
            """,
            [workspace_id],
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM audiences_contact WHERE workspace_id = %s", [workspace_id])
        contacts = int(cursor.fetchone()[0])
    cells: dict[str, int] = {}
    frequency: dict[str, list[int]] = {}
    segments: dict[str, list[Any]] = {}
    stages: dict[str, int] = {}
    for grouping, recency, freq, segment, stage, n, average, low, high in rows:
        if grouping == 0b0011:  # (recency, frequency)
            if recency is None or freq is None:
                continue
            cells[f"{recency},{freq}"] = n
            span = frequency.setdefault(str(freq), [low, high])
            span[0], span[1] = min(span[0], low), max(span[1], high)
        elif grouping == 0b1101:  # (rfm_segment)
            if segment:
                segments[segment] = [n, None if average is None else str(_money(average))]
        elif grouping == 0b1110:  # (lifecycle_stage)
            stages[stage] = n
    interval = workspace_interval(workspace_id=workspace_id, fresh=True)
    previous = InsightFigures.objects.filter(workspace_id=workspace_id).values_list("scored_at", flat=True).first()
    figures, _created = InsightFigures.objects.update_or_create(
        workspace_id=workspace_id,
        defaults={
            "computed_at": timezone.now(),
            "scored_at": scored_at or previous,
            "scored": sum(cells.values()),
            "rfm_cells": cells,
            "rfm_segments": segments,
            "frequency_orders": frequency,
            "stages": stages,
            "contacts": contacts,
            "median_days": interval.median_days,
            "repeat_customers": interval.repeat_customers,
        },
    )
    return figures


def insight_figures(*, workspace: Workspace) -> InsightFigures | None:
    return InsightFigures.objects.filter(workspace=workspace).first()


def rfm_overview(*, workspace: Workspace) -> RfmOverview:
    figures = insight_figures(workspace=workspace)
    counts: dict[tuple[int, int], int] = {}
    for key, n in (figures.rfm_cells if figures else {}).items():
        recency, frequency = (int(part) for part in key.split(","))
        counts[(recency, frequency)] = n
    total = sum(counts.values())
    fullest = max(counts.values(), default=0)
    rows = [
        GridRow(
            recency=recency,
            cells=[
                GridCell(
                    recency=recency,
                    frequency=frequency,
                    count=counts.get((recency, frequency), 0),
                    share=counts.get((recency, frequency), 0) / total if total else 0.0,
                    intensity=round(100 * counts.get((recency, frequency), 0) / fullest) if fullest else 0,
                    segments=_segments_of_cell(recency, frequency),
                )
                for frequency in SCORES
            ],
        )
        for recency in reversed(SCORES)
    ]
    by_segment = figures.rfm_segments if figures else {}
    segments = [
        SegmentSummary(
            segment=value,
            label=str(label),
            count=by_segment.get(value, [0, None])[0],
            average_revenue=None if by_segment.get(value, [0, None])[1] is None else Decimal(by_segment[value][1]),
        )
        for value, label in RfmSegment.choices
    ]
    spans = figures.frequency_orders if figures else {}
    columns = [
        FrequencyColumn(score, *(spans[str(score)] if str(score) in spans else (None, None))) for score in SCORES
    ]
    tied_percent, tied_orders = None, None
    if total and any(column.min_orders is None for column in columns) and columns[0].max_orders is not None:
        in_first = sum(counts.get((recency, 1), 0) for recency in SCORES)
        tied_percent, tied_orders = round(100 * in_first / total), columns[0].max_orders
    return RfmOverview(
        rows=rows,
        segments=segments,
        scored=total,
        columns=columns,
        computed_at=figures.computed_at if figures else None,
        tied_percent=tied_percent,
        tied_orders=tied_orders,
    )


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Decimal("0.01"))


# --- lifecycle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCount:
    stage: str
    label: str
    count: int


def lifecycle_counts(*, workspace: Workspace) -> list[StageCount]:
    """Contacts per stage, as the scoring job last counted them. Contacts without a facts row
    have never ordered: prospects."""
    figures = insight_figures(workspace=workspace)
    rows: dict[str, int] = figures.stages if figures else {}
    contacts = figures.contacts if figures else 0
    prospects = rows.get(LifecycleStage.PROSPECT, 0) + contacts - sum(rows.values())
    return [
        StageCount(
            stage=value, label=str(label), count=prospects if value == LifecycleStage.PROSPECT else rows.get(value, 0)
        )
        for value, label in LifecycleStage.choices
    ]


# --- a contact's purchases (the profile page) -------------------------------------------------


def contact_purchases(*, workspace: Workspace, contact: Contact) -> CustomerFacts | None:
    """The contact's facts; None when it never ordered (nothing to show but "prospect")."""
    return CustomerFacts.objects.filter(workspace=workspace, contact=contact).first()


# --- from a grid cell, a named segment or a stage to a saved segment ---------------------------


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
    from audiences.segments.compiler import validate_rules
    from audiences.segments.services import segment_save

    rules = validate_rules(workspace=workspace, rules=rules)
    existing = Segment.objects.in_workspace(workspace).filter(rules=rules).order_by("pk").first()
    if existing is not None:
        return existing
    taken = set(Segment.objects.in_workspace(workspace).filter(name__startswith=name).values_list("name", flat=True))
    unique, number = name, 2
    while unique in taken:  # a handful of names at most: the names the marketer kept
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
