"""The demo shop's reports: seeded by `manage.py seed_demo` after every other app's demo data,
so the rollups hold the demo's months of mail at once (the beat keeps them fresh after): the
message rollups, the journey and cohorts, list growth, deliverability by provider, a few goals
and the owner's weekly digest."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from analytics.deliverability import provider_days_rebuild
from analytics.goals.services import GoalInput, goal_save
from analytics.journey import add_months, journey_rebuild
from analytics.journey_models import Goal
from analytics.rollups import rollups_rebuild
from esp.models import Workspace

# The demo's addresses are example.com / example.bg / example.ru: spread over mailbox providers
# (by id, so a seed gives the same spread) so the deliverability report has rows — on the
# reserved .test TLD (gmail.com.test), which the report reads as the provider and which can
# never reach a real person's mailbox, whatever provider a visitor sets up in the demo.
_PROVIDER_DOMAINS = {
    "example.com": ("gmail.com.test", "outlook.com.test", "yahoo.com.test", "hotmail.co.uk.test"),
    "example.bg": ("abv.bg.test", "mail.bg.test"),
    "example.ru": ("mail.ru.test", "yandex.ru.test", "inbox.ru.test"),
}


def _spread_addresses(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        for source, targets in _PROVIDER_DOMAINS.items():
            cursor.execute(
                """
                UPDATE audiences_contact c
                SET email = split_part(c.email, '@', 1) || '@' || (%s::text[])[1 + c.id %% %s]
                WHERE c.workspace_id = %s AND lower(split_part(c.email, '@', 2)) = %s
                  AND NOT EXISTS (
                      SELECT 1 FROM audiences_contact o WHERE o.workspace_id = c.workspace_id
                        AND lower(o.email) = lower(split_part(c.email, '@', 1) || '@' || (%s::text[])[1 + c.id %% %s]))
                """,
                [list(targets), len(targets), workspace.pk, source, list(targets), len(targets)],
            )
        cursor.execute(
            """
            UPDATE campaigns_message m SET to_email = c.email FROM audiences_contact c
            WHERE m.workspace_id = %s AND c.id = m.contact_id AND m.to_email <> c.email
            """,
            [workspace.pk],
        )


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
    _spread_addresses(workspace)
    rollups_rebuild(workspace=workspace)
    journey_rebuild(workspace=workspace)
    provider_days_rebuild(workspace=workspace, since=dt.date(2000, 1, 1))
    _goals(workspace)
