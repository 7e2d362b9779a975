"""Celery entry points of analytics (beat jobs in esp/settings/base.py)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from analytics.attribution import attribution_rebuild_all, attribution_refresh
from analytics.deliverability import RECENT_DAYS as PROVIDER_DAYS
from analytics.deliverability import provider_days_rebuild, provider_days_refresh
from analytics.journey import journey_rebuild, journey_refresh
from analytics.rollups import rollups_rebuild, rollups_refresh
from esp.models import Workspace

# The nightly rebuild's reach: messages whose settle the hook missed (a worker killed between
# its commit and the hook) and that had no event since.
RECENT_DAYS = 3


@shared_task(name="analytics.refresh_rollups")
def refresh_rollups() -> int:
    # The message counters first, then the orders (attributed to the messages just counted).
    return rollups_refresh().batches + attribution_refresh().batches


@shared_task(name="analytics.rebuild_recent")
def rebuild_recent() -> int:
    written = 0
    for workspace in Workspace.objects.order_by("pk"):
        today = timezone.now().astimezone(workspace.zone).date()
        written += rollups_rebuild(workspace=workspace, since=today - dt.timedelta(days=RECENT_DAYS), until=today)
    return written


@shared_task(name="analytics.refresh_journey")
def refresh_journey() -> int:
    return journey_refresh()


@shared_task(name="analytics.refresh_providers")
def refresh_providers() -> int:
    return provider_days_refresh()


@shared_task(name="analytics.rebuild_journey")
def rebuild_journey() -> int:
    """Nightly: time alone moves customers into "at risk" and "lapsed"; this month's RFM
    snapshot follows the night's scoring; a hook lost in a crash is caught here."""
    done = 0
    for workspace in Workspace.objects.order_by("pk"):
        journey_rebuild(workspace=workspace)
        today = timezone.now().astimezone(workspace.zone).date()
        provider_days_rebuild(workspace=workspace, since=today - dt.timedelta(days=PROVIDER_DAYS))
        done += 1
    return done


@shared_task(name="analytics.send_digests")
def send_digests() -> int:
    from analytics.digest import digests_send_due

    return digests_send_due()


@shared_task(name="analytics.reattribute")
def reattribute(workspace_id: int) -> None:
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is not None:
        attribution_rebuild_all(workspace=workspace)
