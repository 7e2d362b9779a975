"""Reads of the reports: only the rollups (and the names of what they count), always scoped to
a workspace. Each is one indexed range of DailyRollup rows, so its cost follows the days and
sources shown, not the number of messages sent (DESIGN rule 10)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import F, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.db.models.query import QuerySet

from analytics.kpis import COUNTER_NAMES, MONEY_NAMES, ShopTotals, Totals
from analytics.models import DailyOrders, DailyRollup, RefreshState
from automations.models import Series
from campaigns.models import Broadcast, SourceKind
from esp.models import Workspace

GRAINS = ("day", "week", "month")
TOP_LIMIT = 10
_SUMS = {name: Sum(name) for name in (*COUNTER_NAMES, *MONEY_NAMES)}


def _rollups(workspace: Workspace, start: dt.date | None = None, end: dt.date | None = None) -> QuerySet[DailyRollup]:
    rows = DailyRollup.objects.filter(workspace=workspace)
    if start is not None:
        rows = rows.filter(day__gte=start)
    if end is not None:
        rows = rows.filter(day__lte=end)
    return rows


def totals(*, workspace: Workspace, start: dt.date, end: dt.date) -> Totals:
    """The counters of the messages sent from `start` to `end` (days in the workspace's zone)."""
    return Totals.of(_rollups(workspace, start, end).aggregate(**_SUMS))


def shop_totals(*, workspace: Workspace, start: dt.date, end: dt.date) -> ShopTotals:
    """Every order placed from `start` to `end` (days in the workspace's zone)."""
    row = DailyOrders.objects.filter(workspace=workspace, day__gte=start, day__lte=end).aggregate(
        orders=Sum("orders"), revenue=Sum("revenue")
    )
    return ShopTotals(int(row["orders"] or 0), row["revenue"] or ShopTotals().revenue)


def bucket_start(day: dt.date, grain: str) -> dt.date:
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _buckets(start: dt.date, end: dt.date, grain: str) -> list[dt.date]:
    buckets, day = [], bucket_start(start, grain)
    while day <= end:
        buckets.append(day)
        if grain == "month":
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            day += dt.timedelta(days=7 if grain == "week" else 1)
    return buckets


def timeline(
    *, workspace: Workspace, start: dt.date, end: dt.date, grain: str, source: Source | None = None
) -> list[tuple[dt.date, Totals]]:
    """The counters per day, week (from Monday) or month of the period, every bucket present
    (a day without mail is a zero, not a gap in the chart). A week or month that starts before
    `start` holds only the period's days. `source`: one broadcast's, series' or template's."""
    rows = _rollups(workspace, start, end)
    if source is not None:
        rows = source.filter(rows)
    if grain == "week":
        grouped = rows.annotate(bucket=TruncWeek("day"))
    elif grain == "month":
        grouped = rows.annotate(bucket=TruncMonth("day"))
    else:
        grouped = rows.annotate(bucket=F("day"))
    found: dict[dt.date, Totals] = {}
    for row in grouped.values("bucket").annotate(**_SUMS).order_by("bucket"):
        bucket = row["bucket"]
        found[bucket.date() if isinstance(bucket, dt.datetime) else bucket] = Totals.of(row)
    return [(bucket, found.get(bucket, Totals())) for bucket in _buckets(start, end, grain)]


@dataclass(frozen=True)
class Source:
    """What one report is about: a broadcast (kind "broadcast"), a series (kind "step") or a
    template (kind "template": its messages of every kind)."""

    kind: str
    object_id: int

    def filter(self, rows: QuerySet[DailyRollup]) -> QuerySet[DailyRollup]:
        if self.kind == "template":
            return rows.filter(template_id=self.object_id)
        return rows.filter(kind=self.kind, object_id=self.object_id)


def source_period_totals(*, workspace: Workspace, source: Source, start: dt.date, end: dt.date) -> Totals:
    """One broadcast's, series' or template's figures of the messages sent in the period."""
    return Totals.of(source.filter(_rollups(workspace, start, end)).aggregate(**_SUMS))


def source_step_totals(*, workspace: Workspace, series_id: int, start: dt.date, end: dt.date) -> dict[str, Totals]:
    """A series' figures per step key, of the messages sent in the period."""
    rows = (
        _rollups(workspace, start, end)
        .filter(kind=SourceKind.STEP, object_id=series_id)
        .values("step_key")
        .annotate(**_SUMS)
        .order_by("step_key")
    )
    return {row["step_key"]: Totals.of(row) for row in rows}


@dataclass(frozen=True)
class SourceFigures:
    object_id: int
    name: str
    totals: Totals
    # The page of the broadcast or series; None when it was deleted.
    exists: bool = True


def _names(workspace: Workspace, kind: str, ids: list[int]) -> dict[int, str]:
    if kind == SourceKind.BROADCAST:
        return dict(Broadcast.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", "name"))
    if kind == SourceKind.STEP:
        return dict(Series.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", "name"))
    return {}


def top_sources(
    *, workspace: Workspace, kind: str, start: dt.date, end: dt.date, limit: int = TOP_LIMIT
) -> list[SourceFigures]:
    """The broadcasts (kind "broadcast") or series (kind "step") that brought the most revenue
    in the period (then the most sent), with their figures."""
    rows = list(
        _rollups(workspace, start, end)
        .filter(kind=kind)
        .values("object_id")
        .annotate(**_SUMS)
        .order_by("-revenue", "-sent", "-object_id")[:limit]
    )
    names = _names(workspace, kind, [row["object_id"] for row in rows])
    return [
        SourceFigures(
            row["object_id"], names.get(row["object_id"], f"#{row['object_id']}"), Totals.of(row),
            row["object_id"] in names,
        )
        for row in rows
    ]  # fmt: skip


def source_totals(*, workspace: Workspace, kind: str, object_id: int) -> Totals:
    """One broadcast's or series' figures over all its days."""
    return Totals.of(DailyRollup.objects.filter(workspace=workspace, kind=kind, object_id=object_id).aggregate(**_SUMS))


def series_step_totals(*, workspace: Workspace, series_id: int) -> dict[str, Totals]:
    """A series' figures per step key, over all its days."""
    rows = (
        DailyRollup.objects.filter(workspace=workspace, kind=SourceKind.STEP, object_id=series_id)
        .values("step_key")
        .annotate(**_SUMS)
        .order_by("step_key")
    )
    return {row["step_key"]: Totals.of(row) for row in rows}


def refreshed_at() -> dt.datetime | None:
    """When the rollups were last refreshed (one refresh serves every workspace)."""
    return RefreshState.objects.filter(pk=1).values_list("refreshed_at", flat=True).first()
