"""Reads of the RFM and lifecycle pages and of a contact's purchases (the shortcut to a saved
segment is in services.py).

The pages' numbers are InsightFigures, stored by the scoring job (facts.insight_figures_refresh,
one scan of the workspace's CustomerFacts) rather than aggregated on every page load; every read
takes the workspace and filters by it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from audiences.facts import RFM_SEGMENT_GRID
from audiences.models import Contact, CustomerFacts, InsightFigures, LifecycleStage, RfmSegment
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
