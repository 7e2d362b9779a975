"""Writing goals (editors and owners) and reading their progress (everyone)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics.goals.measures import MEASURES, Measure
from analytics.goals.pace import Counted, Pace, days_elapsed, pace_compute
from analytics.journey_models import Goal, TargetKind
from audiences.models import Segment
from esp.models import User, Workspace

MAX_MONTHS = 36
MAX_TARGET = Decimal("1e12")


def month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


@dataclass(frozen=True)
class GoalInput:
    name: str
    kpi: str
    target_kind: str
    target_value: Decimal
    start: dt.date  # any day of the first month
    end: dt.date  # any day of the last month
    segment_id: int | None = None


def _validate(workspace: Workspace, data: GoalInput) -> tuple[dt.date, dt.date, Segment | None]:
    errors: dict[str, str] = {}
    if not data.name.strip():
        errors["name"] = _("Give the goal a name.")
    measure = MEASURES.get(data.kpi)
    if measure is None:
        errors["kpi"] = _("Unknown measure.")
    if data.target_kind not in TargetKind.values:
        errors["target_kind"] = _("Unknown kind of target.")
    if not data.target_value.is_finite() or abs(data.target_value) >= MAX_TARGET:
        errors["target_value"] = _("Give a number.")
    elif data.target_kind == TargetKind.ABSOLUTE and data.target_value < 0:
        errors["target_value"] = _("A target value cannot be negative.")
    elif data.target_kind == TargetKind.ABSOLUTE and measure and measure.kind == "rate" and data.target_value > 100:
        errors["target_value"] = _("A rate is at most 100 %.")
    elif data.target_kind == TargetKind.GROWTH and data.target_value <= -100:
        errors["target_value"] = _("A change below −100 % would need less than nothing.")
    start, end = data.start.replace(day=1), month_end(data.end)
    if end < start:
        errors["end"] = _("The last month is before the first month.")
    elif (end.year - start.year) * 12 + end.month - start.month + 1 > MAX_MONTHS:
        errors["end"] = _("A goal covers at most three years.")
    segment = None
    if data.segment_id is not None:
        segment = Segment.objects.in_workspace(workspace).filter(pk=data.segment_id).first()
        if segment is None:
            errors["segment"] = _("No such segment.")
        elif measure is not None and not measure.segmentable:
            errors["segment"] = _(
                "Only order measures (orders, revenue, first orders, customers) can be limited to a segment."
            )
    if errors:
        raise ValidationError(errors)
    return start, end, segment


@transaction.atomic
def goal_save(*, workspace: Workspace, data: GoalInput, goal_id: int | None = None, user: User | None = None) -> Goal:
    start, end, segment = _validate(workspace, data)
    if goal_id is None:
        goal = Goal(workspace=workspace, created_by=user)
    else:
        goal = get_object_or_404(Goal.objects.filter(workspace=workspace), pk=goal_id)
    goal.name = data.name.strip()[:120]
    goal.kpi = data.kpi
    goal.target_kind = data.target_kind
    goal.target_value = data.target_value
    goal.start, goal.end, goal.segment = start, end, segment
    goal.updated_at = timezone.now()
    goal.save()
    return goal


@transaction.atomic
def goal_delete(*, workspace: Workspace, goal_id: int) -> None:
    get_object_or_404(Goal.objects.filter(workspace=workspace), pk=goal_id).delete()


def goals_list(*, workspace: Workspace) -> list[Goal]:
    return list(Goal.objects.filter(workspace=workspace).select_related("segment").order_by("end", "id"))


def goal_get(*, workspace: Workspace, goal_id: int) -> Goal:
    return get_object_or_404(Goal.objects.filter(workspace=workspace).select_related("segment"), pk=goal_id)


# --- progress --------------------------------------------------------------------------------


def _year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


@dataclass(frozen=True)
class GoalProgress:
    goal: Goal
    measure: Measure
    counted: Counted
    baseline: float | None  # the same period last year (growth targets)
    target: float | None  # as the figure is (a rate as a fraction)
    pace: Pace

    @property
    def is_rate(self) -> bool:
        return self.measure.kind == "rate"


def goal_target(goal: Goal, measure: Measure, baseline: float | None) -> float | None:
    value = float(goal.target_value)
    if goal.target_kind == TargetKind.ABSOLUTE:
        return value / 100 if measure.kind == "rate" else value
    if baseline is None:
        return None
    return baseline * (1 + value / 100)


def goal_progress(*, workspace: Workspace, goal: Goal, today: dt.date | None = None) -> GoalProgress:
    today = today or timezone.now().astimezone(workspace.zone).date()
    measure = MEASURES[goal.kpi]
    elapsed, total = days_elapsed(goal.start, goal.end, today)
    so_far_end = min(today, goal.end)
    counted = measure.count(workspace, goal.start, so_far_end, goal.segment) if elapsed > 0 else Counted(0.0, None)
    baseline = None
    if goal.target_kind == TargetKind.GROWTH:
        baseline = measure.count(workspace, _year_before(goal.start), _year_before(goal.end), goal.segment).figure
    target = goal_target(goal, measure, baseline)
    pace = pace_compute(
        counted=counted,
        target=target,
        higher_is_better=measure.higher_is_better,
        elapsed_days=elapsed,
        total_days=total,
    )
    return GoalProgress(goal, measure, counted, baseline, target, pace)


def goals_progress(*, workspace: Workspace, today: dt.date | None = None) -> list[GoalProgress]:
    return [goal_progress(workspace=workspace, goal=g, today=today) for g in goals_list(workspace=workspace)]


def progress_row(item: GoalProgress) -> dict[str, Any]:
    """A goal's progress as plain values (CSV, API, digest)."""
    pace = item.pace
    return {
        "id": item.goal.pk,
        "name": item.goal.name,
        "kpi": item.goal.kpi,
        "target_kind": item.goal.target_kind,
        "target_value": float(item.goal.target_value),
        "start": item.goal.start,
        "end": item.goal.end,
        "segment": item.goal.segment.name if item.goal.segment else None,
        "baseline": item.baseline,
        "target": item.target,
        "current": pace.current,
        "progress": pace.progress,
        "forecast": pace.forecast,
        "needed": pace.needed,
        "current_pace": pace.current_pace,
        "elapsed_days": pace.elapsed_days,
        "total_days": pace.total_days,
        "on_track": pace.on_track,
        "reached": pace.reached,
    }
