"""Reads of the RFM and lifecycle pages and of a contact's purchases (the shortcut to a saved
segment is in services.py).

The numbers come from CustomerFacts (audiences/facts.py computes them); every read takes the
workspace and filters by it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Avg, Count

from audiences.facts import RFM_SEGMENT_GRID
from audiences.models import Contact, CustomerFacts, LifecycleStage, RfmSegment
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
class RfmOverview:
    rows: list[GridRow]  # recency 5 (top) to 1
    segments: list[SegmentSummary]
    scored: int


def _segments_of_cell(recency: int, frequency: int) -> tuple[str, ...]:
    """Named segments reachable from an (R, F) cell for monetary scores 1..5, in table order."""
    names: list[str] = []
    for monetary in SCORES:
        name = str(RFM_SEGMENT_GRID[recency][(frequency + monetary + 1) // 2 - 1])
        if name not in names:
            names.append(name)
    return tuple(names)


def rfm_overview(*, workspace: Workspace) -> RfmOverview:
    scored = CustomerFacts.objects.filter(
        workspace=workspace, recency_score__isnull=False, frequency_score__isnull=False
    )
    counts = {
        (row["recency_score"], row["frequency_score"]): row["n"]
        for row in scored.values("recency_score", "frequency_score").annotate(n=Count("pk")).order_by()
    }
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
    by_segment = {
        row["rfm_segment"]: row
        for row in CustomerFacts.objects.filter(workspace=workspace)
        .exclude(rfm_segment="")
        .values("rfm_segment")
        .annotate(n=Count("pk"), average=Avg("revenue"))
        .order_by()
    }
    segments = [
        SegmentSummary(
            segment=value,
            label=str(label),
            count=by_segment.get(value, {}).get("n", 0),
            average_revenue=_money(by_segment.get(value, {}).get("average")),
        )
        for value, label in RfmSegment.choices
    ]
    return RfmOverview(rows=rows, segments=segments, scored=total)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Decimal("0.01"))


# --- lifecycle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCount:
    stage: str
    label: str
    count: int


def lifecycle_counts(*, workspace: Workspace) -> list[StageCount]:
    """Contacts per stage. Contacts without a facts row have never ordered: prospects."""
    rows = dict(
        CustomerFacts.objects.filter(workspace=workspace)
        .values("lifecycle_stage")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("lifecycle_stage", "n")
    )
    with_facts = sum(rows.values())
    prospects = rows.get(LifecycleStage.PROSPECT, 0) + Contact.objects.in_workspace(workspace).count() - with_facts
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
