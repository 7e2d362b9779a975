"""Lifecycle stages: the workspace's thresholds (set, or derived from its median purchase
interval), the stage as SQL, and the workspace-wide refresh of stages."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences import hooks
from audiences.facts.locks import workspace_lock
from audiences.models import LifecycleSettings, LifecycleStage
from esp.models import Workspace
from esp.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

# --- lifecycle -------------------------------------------------------------------------------
#
# prospect: no counted order · first_time: 1 order · repeat: 2+ · loyal: loyal_min_orders+ ;
# then, whatever the count, at_risk once at_risk_after_days have passed since the last order and
# lapsed once lapsed_after_days have. Empty day thresholds are derived from the workspace's own
# median purchase interval M (the median over its customers of their median days between
# orders, needing MIN_REPEAT_CUSTOMERS repeat customers to be meaningful):
#   at risk after 2×M days, at least 30 and at most 365 (90 without a usable M),
#   lapsed after twice the at-risk threshold (so 4×M by default).
# A derived at-risk threshold never reaches a lapsed threshold set by hand: it is then halved.

AT_RISK_FACTOR = 2
AT_RISK_FLOOR_DAYS = 30
AT_RISK_CEILING_DAYS = 365
AT_RISK_FALLBACK_DAYS = 90
LAPSED_FACTOR = 2  # × the at-risk threshold
MIN_REPEAT_CUSTOMERS = 5
DEFAULT_LOYAL_MIN_ORDERS = 4

# The workspace median is a statistic over all its customers: too costly to recompute for
# every ingested batch, so it is cached; lifecycle_refresh (nightly, and after a settings
# change) recomputes it. A stale value only shifts a threshold by a little for a few hours.
_MEDIAN_CACHE_SECONDS = 6 * 3600


def _median_cache_key(workspace_id: int) -> str:
    return f"audiences:workspace-median-interval:{workspace_id}"


@dataclass(frozen=True)
class WorkspaceInterval:
    median_days: float | None  # None when fewer than MIN_REPEAT_CUSTOMERS repeat customers
    repeat_customers: int


@dataclass(frozen=True)
class LifecycleThresholds:
    loyal_min_orders: int
    at_risk_after_days: int
    lapsed_after_days: int
    # What the derivation gives, shown next to the workspace's own values on the settings page.
    derived_at_risk_after_days: int
    derived_lapsed_after_days: int
    at_risk_is_derived: bool
    lapsed_is_derived: bool
    interval: WorkspaceInterval


def workspace_interval(*, workspace_id: int, fresh: bool = False) -> WorkspaceInterval:
    key = _median_cache_key(workspace_id)
    if not fresh:
        try:
            cached = cache.get(key)
        except Exception:  # the cache only saves a query; Redis trouble must not stop facts
            logger.warning("cache unavailable for the workspace interval", exc_info=True)
            cached = None
        if cached is not None:
            return WorkspaceInterval(median_days=cached[0], repeat_customers=cached[1])
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY median_days_between_orders), count(*)
            FROM audiences_customerfacts
            WHERE workspace_id = %s AND median_days_between_orders IS NOT NULL AND orders_count >= 2
            """,
            [workspace_id],
        )
        median, count = cursor.fetchone()
    interval = WorkspaceInterval(
        median_days=float(median) if median is not None and count >= MIN_REPEAT_CUSTOMERS else None,
        repeat_customers=int(count),
    )
    try:
        cache.set(key, (interval.median_days, interval.repeat_customers), _MEDIAN_CACHE_SECONDS)
    except Exception:
        logger.warning("cache unavailable for the workspace interval", exc_info=True)
    return interval


def lifecycle_thresholds(
    *, workspace_id: int, fresh: bool = False, interval: WorkspaceInterval | None = None
) -> LifecycleThresholds:
    """The workspace's thresholds: its settings, with empty day thresholds derived (from
    `interval` when given: the page passes the one the scoring job stored)."""
    settings = LifecycleSettings.objects.filter(workspace_id=workspace_id).first()
    if interval is None:
        interval = workspace_interval(workspace_id=workspace_id, fresh=fresh)
    if interval.median_days is None:
        derived_at_risk = AT_RISK_FALLBACK_DAYS
    else:
        derived_at_risk = math.ceil(AT_RISK_FACTOR * interval.median_days)
        derived_at_risk = min(max(derived_at_risk, AT_RISK_FLOOR_DAYS), AT_RISK_CEILING_DAYS)
    set_at_risk = settings.at_risk_after_days if settings else None
    set_lapsed = settings.lapsed_after_days if settings else None
    at_risk = set_at_risk if set_at_risk is not None else derived_at_risk
    if set_at_risk is None and set_lapsed is not None and at_risk >= set_lapsed:
        at_risk = max(set_lapsed // 2, 1)
    lapsed = set_lapsed if set_lapsed is not None else LAPSED_FACTOR * at_risk
    return LifecycleThresholds(
        loyal_min_orders=settings.loyal_min_orders if settings else DEFAULT_LOYAL_MIN_ORDERS,
        at_risk_after_days=at_risk,
        lapsed_after_days=lapsed,
        derived_at_risk_after_days=derived_at_risk,
        derived_lapsed_after_days=LAPSED_FACTOR * derived_at_risk,
        at_risk_is_derived=set_at_risk is None,
        lapsed_is_derived=set_lapsed is None,
        interval=interval,
    )


def _stage_sql(orders: str, last_order: str) -> str:
    """The lifecycle stage as a SQL expression over two columns; parameters %(now)s,
    %(loyal_min)s, %(at_risk_days)s, %(lapsed_days)s."""
    return f"""
        CASE
            WHEN {orders} = 0 OR {last_order} IS NULL THEN '{LifecycleStage.PROSPECT}'
            WHEN {last_order} <= %(now)s - make_interval(days => %(lapsed_days)s) THEN '{LifecycleStage.LAPSED}'
            WHEN {last_order} <= %(now)s - make_interval(days => %(at_risk_days)s) THEN '{LifecycleStage.AT_RISK}'
            WHEN {orders} >= %(loyal_min)s THEN '{LifecycleStage.LOYAL}'
            WHEN {orders} >= 2 THEN '{LifecycleStage.REPEAT}'
            ELSE '{LifecycleStage.FIRST_TIME}'
        END"""


def _stage_params(thresholds: LifecycleThresholds, now: datetime) -> dict[str, Any]:
    return {
        "now": now,
        "loyal_min": thresholds.loyal_min_orders,
        "at_risk_days": thresholds.at_risk_after_days,
        "lapsed_days": thresholds.lapsed_after_days,
    }


def lifecycle_refresh(*, workspace_id: int, now: datetime | None = None) -> int:
    """Recompute every customer's lifecycle stage (time passes: customers drift into at risk
    and lapsed without any new event). Also refreshes the cached workspace median first.
    Returns how many contacts changed stage."""
    thresholds = lifecycle_thresholds(workspace_id=workspace_id, fresh=True)
    params = {"ws": workspace_id, **_stage_params(thresholds, now or timezone.now())}
    with transaction.atomic(), connection.cursor() as cursor:
        workspace_lock(cursor, workspace_id)
        stage = _stage_sql("orders_count", "last_order_at")
        cursor.execute(
            f"""
            UPDATE audiences_customerfacts SET lifecycle_stage = {stage}
            WHERE workspace_id = %(ws)s AND lifecycle_stage IS DISTINCT FROM ({stage})
            RETURNING contact_id, lifecycle_stage
            """,  # noqa: S608 — a constant expression; values are parameters
            params,
        )
        changed = cursor.fetchall()
        # Time alone moves customers into "at risk" and "lapsed": the layers above hear it.
        hooks.stage_changes_fire(workspace_id, ((row[0], "lifecycle_stage", row[1]) for row in changed))
        return len(changed)


@transaction.atomic
def lifecycle_settings_save(
    *,
    workspace: Workspace,
    loyal_min_orders: int,
    at_risk_after_days: int | None,
    lapsed_after_days: int | None,
) -> LifecycleSettings:
    """Store the workspace's thresholds (None = derive). Stages are recomputed by a queued
    lifecycle refresh, not here: on a big workspace that is a long UPDATE."""
    errors: dict[str, str] = {}
    if loyal_min_orders < 2:
        errors["loyal_min_orders"] = _("A loyal customer has at least 2 orders.")
    for name, value in (("at_risk_after_days", at_risk_after_days), ("lapsed_after_days", lapsed_after_days)):
        if value is not None and not 1 <= value <= 3650:
            errors[name] = _("Between 1 and 3650 days.")
    if at_risk_after_days is not None and lapsed_after_days is not None and lapsed_after_days <= at_risk_after_days:
        errors["lapsed_after_days"] = _("Must be more days than “at risk”.")
    if errors:
        raise ValidationError(errors)
    from audiences.tasks import refresh_lifecycle

    settings, _created = LifecycleSettings.objects.update_or_create(
        workspace=workspace,
        defaults={
            "loyal_min_orders": loyal_min_orders,
            "at_risk_after_days": at_risk_after_days,
            "lapsed_after_days": lapsed_after_days,
            "updated_at": timezone.now(),
        },
    )
    enqueue_after_commit(refresh_lifecycle, workspace.pk)
    return settings
