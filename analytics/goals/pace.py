"""The arithmetic of a goal's progress, pace and forecast: pure functions of what was counted
so far, tested on their own (tests/analytics/test_goals.py).

The forecast is linear over the period so far: a count keeps growing at its average daily
rate up to now; a rate stays where it is, over a base that keeps growing the same way. It is
a projection, not a prediction (the page says so): seasonality, a planned promo and a list
that grows are not in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Counted:
    """A goal's measure so far: a count (`value`, no base) or a rate (`value` over `base`)."""

    value: float
    base: float | None = None

    @property
    def figure(self) -> float | None:
        if self.base is None:
            return self.value
        return self.value / self.base if self.base else None


@dataclass(frozen=True)
class Pace:
    target: float | None
    current: float | None  # the figure so far (a count, or a rate as a fraction)
    elapsed_days: int
    total_days: int
    forecast: float | None  # at the end of the period, linear
    progress: float | None  # current ÷ target, for counts (0.5 = half way)
    # Counts: what each remaining day must bring; rates: the rate the rest must have.
    needed: float | None
    current_pace: float | None  # counts: per day so far; rates: the rate so far
    on_track: bool | None
    reached: bool | None  # the period is over (or a count already passed its target)

    @property
    def remaining_days(self) -> int:
        return self.total_days - self.elapsed_days


def days_elapsed(start: dt.date, end: dt.date, today: dt.date) -> tuple[int, int]:
    """(days of the period passed, today included; days of the period)."""
    total = (end - start).days + 1
    return min(max((today - start).days + 1, 0), total), total


def pace_compute(
    *, counted: Counted, target: float | None, higher_is_better: bool, elapsed_days: int, total_days: int
) -> Pace:
    remaining = total_days - elapsed_days
    current = counted.figure
    over = elapsed_days >= total_days
    if elapsed_days <= 0:
        return Pace(target, current, 0, total_days, None, None, None, None, None, None)
    better = (lambda a, b: a >= b) if higher_is_better else (lambda a, b: a <= b)
    if counted.base is None:
        per_day = counted.value / elapsed_days
        forecast = counted.value + per_day * remaining
        needed: float | None = None
        if target is not None and remaining > 0:
            needed = max(target - counted.value, 0.0) / remaining if higher_is_better else None
        progress = counted.value / target if target else None
        reached = None
        if target is not None:
            passed = better(counted.value, target)
            reached = passed if (over or (higher_is_better and passed)) else None
        return Pace(
            target, counted.value, elapsed_days, total_days, forecast, progress, needed, per_day,
            None if target is None else better(forecast, target), reached,
        )  # fmt: skip
    # A rate: the base so far projected to the period's end; the rest must bring the rate
    # that makes the whole period's rate the target.
    base = counted.base or 0.0
    rate_forecast: float | None = current
    needed = None
    if target is not None and remaining > 0 and base > 0:
        base_total = base / elapsed_days * total_days
        rest = base_total - base
        needed = (target * base_total - counted.value) / rest if rest > 0 else None
        if needed is not None:
            needed = min(max(needed, 0.0), 1.0) if higher_is_better else max(needed, 0.0)
    on_track = None if target is None or current is None else better(current, target)
    reached = on_track if over else None
    return Pace(target, current, elapsed_days, total_days, rate_forecast, None, needed, current, on_track, reached)
