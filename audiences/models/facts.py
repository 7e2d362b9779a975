"""What is derived from a contact's orders: purchase facts with RFM scores, and lifecycle stages
with the workspace's thresholds."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import Workspace, WorkspaceOwned


class RfmSegment(models.TextChoices):
    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential loyalist")
    NEW_CUSTOMER = "new_customer", _("New customer")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANT_LOSE_THEM = "cant_lose_them", _("Can't lose them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    FIRST_TIME = "first_time", _("First-time customer")
    REPEAT = "repeat", _("Repeat customer")
    LOYAL = "loyal", _("Loyal customer")
    AT_RISK = "at_risk", _("At risk")
    LAPSED = "lapsed", _("Lapsed")


class CustomerFacts(WorkspaceOwned):
    """Purchase facts of one contact, recomputed from its order events whenever new ones arrive
    (so refunds, duplicates and late events are always right), plus the nightly RFM scores and
    lifecycle stage. A contact without a row has never been processed: a prospect."""

    contact = models.OneToOneField(
        "audiences.Contact", primary_key=True, on_delete=models.CASCADE, related_name="facts"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    orders_count = models.PositiveIntegerField(_("orders"), default=0)
    revenue = models.DecimalField(_("revenue"), max_digits=14, decimal_places=2, default=0)
    average_order_value = models.DecimalField(_("average order value"), max_digits=14, decimal_places=2, null=True)
    refunds_count = models.PositiveIntegerField(_("refunds"), default=0)
    refunded = models.DecimalField(_("refunded"), max_digits=14, decimal_places=2, default=0)
    first_order_at = models.DateTimeField(_("first order"), null=True)
    last_order_at = models.DateTimeField(_("last order"), null=True)
    products = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    categories = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    median_days_between_orders = models.FloatField(_("median days between orders"), null=True)
    predicted_next_order_at = models.DateTimeField(_("predicted next order"), null=True)
    recency_score = models.PositiveSmallIntegerField(null=True)
    frequency_score = models.PositiveSmallIntegerField(null=True)
    monetary_score = models.PositiveSmallIntegerField(null=True)
    rfm_segment = models.CharField(_("RFM segment"), max_length=24, choices=RfmSegment.choices, blank=True, default="")
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.PROSPECT
    )
    updated_at = models.DateTimeField(default=timezone.now)
    rfm_scored_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "recency_score", "frequency_score"], name="facts_rfm_grid"),
            # "Bought together" recommendations (campaigns.content.selectors) and product
            # conditions look facts up by product; rows change once per order, so it is cheap.
            GinIndex(fields=["products"], name="facts_products"),
            # RFM scoring reads only this: its two passes are index-only scans, the recency
            # rank walks it in order (no sort), and the stored scores ride along so that only
            # the rows that change are written.
            models.Index(
                fields=["workspace", "last_order_at"],
                include=[
                    "orders_count",
                    "revenue",
                    "contact",
                    "recency_score",
                    "frequency_score",
                    "monetary_score",
                    "rfm_segment",
                ],
                condition=models.Q(orders_count__gt=0, last_order_at__isnull=False),
                name="facts_rfm_rank",
            ),
            # Scored rows that are no longer customers' (orders refunded, a merge): the
            # scoring clears them; nearly always empty, so finding them costs nothing.
            models.Index(
                fields=["workspace"],
                condition=~models.Q(orders_count__gt=0, last_order_at__isnull=False)
                & (models.Q(recency_score__isnull=False) | ~models.Q(rfm_segment="")),
                name="facts_rfm_stale",
            ),
        ]


class LifecycleSettings(WorkspaceOwned):
    """The workspace's thresholds for lifecycle stages. Empty day thresholds mean "derive
    from this workspace's own median days between orders"."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    loyal_min_orders = models.PositiveSmallIntegerField(_("orders to count as loyal"), default=4)
    at_risk_after_days = models.PositiveIntegerField(_("at risk after days without an order"), null=True, blank=True)
    lapsed_after_days = models.PositiveIntegerField(_("lapsed after days without an order"), null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)


class InsightFigures(WorkspaceOwned):
    """The figures of the RFM and lifecycle pages, computed by the scoring job (nightly, on
    demand, after a threshold change) instead of on every page load: at a million contacts
    those aggregates take hundreds of milliseconds."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    computed_at = models.DateTimeField()
    scored_at = models.DateTimeField(null=True)  # the last RFM scoring run
    scored = models.PositiveIntegerField(default=0)
    # {"R,F": customers}; {segment: [customers, average revenue as text]}; {F: [min, max orders]}
    rfm_cells = models.JSONField(default=dict)
    rfm_segments = models.JSONField(default=dict)
    frequency_orders = models.JSONField(default=dict)
    stages = models.JSONField(default=dict)  # {stage: contacts with facts}
    contacts = models.PositiveIntegerField(default=0)
    median_days = models.FloatField(null=True)
    repeat_customers = models.PositiveIntegerField(default=0)
