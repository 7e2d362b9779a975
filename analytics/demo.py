"""The demo shop's reports: seeded by `manage.py seed_demo` after every other app's demo data,
so the rollups hold the demo's months of mail at once (the beat keeps them fresh after): the
message rollups, the journey and cohorts, list growth, deliverability by provider, a few goals
and the owner's weekly digest."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from analytics.deliverability import provider_days_rebuild
from analytics.goals.services import GoalInput, goal_save
from analytics.journey import add_months, journey_rebuild
from analytics.journey_models import Goal
from analytics.rollups import rollups_rebuild
from esp.models import Workspace


def _goals(workspace: Workspace) -> None:
    if Goal.objects.filter(workspace=workspace).exists():
        return
    today = timezone.now().astimezone(workspace.zone).date()
    quarter = today.replace(day=1, month=(today.month - 1) // 3 * 3 + 1)
    month = today.replace(day=1)
    for name, kpi, kind, value, start, end in (
        ("+40 % first orders this quarter", "first_orders", "growth", 40, quarter, add_months(quarter, 2)),
        ("Revenue this quarter", "revenue", "absolute", 25000, quarter, add_months(quarter, 2)),
        ("Open rate at least 35 %", "open_rate", "absolute", 35, month, month),
        ("Complaints under 0.1 %", "complaint_rate", "absolute", Decimal("0.1"), quarter, add_months(quarter, 2)),
        ("2,000 clicks this year", "clicked", "absolute", 2000, today.replace(month=1, day=1),
         today.replace(month=12, day=1)),
    ):  # fmt: skip
        goal_save(workspace=workspace, data=GoalInput(name, kpi, kind, Decimal(value), start, end))


def seed(workspace: Workspace) -> None:
    rollups_rebuild(workspace=workspace)
    journey_rebuild(workspace=workspace)
    provider_days_rebuild(workspace=workspace, since=dt.date(2000, 1, 1))
    _goals(workspace)
