"""The figures of the RFM and lifecycle pages, computed once per scoring and stored."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from audiences.facts.lifecycle import workspace_interval
from audiences.models import InsightFigures


def insight_figures_refresh(*, workspace_id: int, scored_at: datetime | None = None) -> InsightFigures:
    """Compute and store the figures of the RFM and lifecycle pages: one scan of the
    workspace's facts (grouping sets), one count of its contacts. Run by the scoring job."""
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
                segments[segment] = [n, None if average is None else str(Decimal(average).quantize(Decimal("0.01")))]
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
