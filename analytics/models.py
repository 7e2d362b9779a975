"""Reports are read from rollups, never from the raw send log (DESIGN rule 10).

Two tables carry the figures:

- `MessageFact`: one narrow row per message that went out (not per event): its report
  dimensions, fixed when the row is made, and `flags`, the bits of analytics.kpis.Flag it has
  earned so far (sent, delivered, opened by a person, …). Bits are only ever OR-ed in, so
  reading the same event twice changes nothing: this is what keeps "unique per message" right
  when a second open arrives later, an event arrives for an old day, or a refresh and a
  rebuild read the same rows.
- `DailyRollup`: per workspace × day × source × template, the counters of analytics.kpis
  summed over the facts of the messages sent that day. A refresh adds to it exactly the
  change of each fact it moved (counter(new flags) − counter(old flags)).

The day is the day the message went out, in the workspace's zone (Workspace.zone): a late
open lands on its message's day, so a day's rates are those of the mail sent that day.

`PendingSent`, `RefreshState` and `EventGap` are the refresh's bookkeeping (analytics.rollups).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from esp.models import Workspace


class MessageFact(models.Model):
    """What one message has earned, for the rollups (see the module's docstring). No foreign
    key to the message: its check would cost every refresh a lookup per row, and a deleted
    message keeps counting in the rollup until a rebuild, as it counted when it went."""

    message_id = models.BigIntegerField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=16)
    # broadcast: the broadcast's id; step: the series' id; tx and others: the template's id (0: none).
    object_id = models.BigIntegerField(default=0)
    step_key = models.CharField(max_length=100, blank=True, default="")
    template_id = models.BigIntegerField(default=0)
    flags = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["workspace", "day"], name="analytics_fact_day")]

    def __str__(self) -> str:
        return f"message {self.message_id}: {self.flags:b}"


class DailyRollup(models.Model):
    """One workspace's counters of one day and source (see analytics.kpis for each counter's
    definition). `conversions` and `revenue` wait for attribution: last-touch conversions
    and their revenue will be added to the row of the message that earned them."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=16)
    object_id = models.BigIntegerField(default=0)
    step_key = models.CharField(max_length=100, blank=True, default="")
    template_id = models.BigIntegerField(default=0)
    sent = models.IntegerField(default=0)
    delivered = models.IntegerField(default=0)
    bounced = models.IntegerField(default=0)
    bounced_hard = models.IntegerField(default=0)
    bounced_soft = models.IntegerField(default=0)
    deferred = models.IntegerField(default=0)
    opened = models.IntegerField(default=0)
    opened_all = models.IntegerField(default=0)
    clicked = models.IntegerField(default=0)
    clicked_machine = models.IntegerField(default=0)
    complained = models.IntegerField(default=0)
    unsubscribed = models.IntegerField(default=0)
    # Room for attribution (last touch within the workspace's windows).
    conversions = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "kind", "object_id", "step_key", "template_id"],
                name="analytics_rollup_unique",
            )
        ]
        indexes = [
            # One broadcast's or series' figures over all its days.
            models.Index(fields=["workspace", "kind", "object_id", "day"], name="analytics_rollup_source"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}:{self.object_id}:{self.step_key} ({self.sent} sent)"


class PendingSent(models.Model):
    """Messages the send loop settled (campaigns.hooks.messages_settled) that the next refresh
    has not read yet: the send log has no index on `sent_at` (each one would cost the send
    loop), so the hook tells reports which rows to look at instead of a scan."""

    message_id = models.BigIntegerField(primary_key=True)

    def __str__(self) -> str:
        return str(self.message_id)


class RefreshState(models.Model):
    """The refresh's watermark: every MessageEvent id up to `event_id` was read (ids below it
    that were not committed yet when it passed are kept as EventGap rows)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    event_id = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"events up to {self.event_id}"


class EventGap(models.Model):
    """A range of MessageEvent ids the watermark passed that held no committed row at that
    moment: a transaction still open (its rows appear later with lower ids) or one rolled
    back, or an id an ON CONFLICT DO NOTHING used up. Read again by every refresh until it
    is GAP_LIFETIME old."""

    id = models.BigAutoField(primary_key=True)
    lo = models.BigIntegerField()
    hi = models.BigIntegerField()
    seen_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.lo}–{self.hi}"


# --- money: attribution (analytics.attribution) --------------------------------------------


class AttributionSettings(models.Model):
    """A workspace's attribution windows: an order belongs to the email the contact last
    clicked within `click_days` before it, else the one last opened (by a person) within
    `open_days`. 0 turns that kind of touch off. No row: the defaults."""

    DEFAULT_CLICK_DAYS = 5
    DEFAULT_OPEN_DAYS = 5
    MAX_DAYS = 90

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+", primary_key=True)
    click_days = models.PositiveSmallIntegerField(default=DEFAULT_CLICK_DAYS)
    open_days = models.PositiveSmallIntegerField(default=DEFAULT_OPEN_DAYS)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"click {self.click_days} d, open {self.open_days} d"


class Attribution(models.Model):
    """One order (audiences.facts.purchases reads orders the same way) and the email it is
    attributed to, if any: the report dimensions of that message, so its conversion and
    revenue land on the message's DailyRollup row. `counts` is false for an order refunded
    in full; `refunded` is what was given back (capped at the amount)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_id = models.BigIntegerField()
    order_key = models.CharField(max_length=255)
    order_event_id = models.BigIntegerField()
    ordered_at = models.DateTimeField()
    # The order's day in the workspace's zone (DailyOrders).
    order_day = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    refunded = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    counts = models.BooleanField(default=True)
    # The attributed message and how it was touched ("click" / "open"); empty when none.
    message_id = models.BigIntegerField(null=True, blank=True)
    touch = models.CharField(max_length=8, blank=True, default="")
    touched_at = models.DateTimeField(null=True, blank=True)
    day = models.DateField(null=True, blank=True)
    kind = models.CharField(max_length=16, blank=True, default="")
    object_id = models.BigIntegerField(default=0)
    step_key = models.CharField(max_length=100, blank=True, default="")
    template_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "contact_id", "order_key"], name="analytics_attribution_order")
        ]
        indexes = [
            # The money of one rollup row.
            models.Index(
                fields=["workspace", "day", "kind", "object_id", "step_key", "template_id"],
                condition=models.Q(message_id__isnull=False),
                name="analytics_attribution_rollup",
            ),
            models.Index(fields=["workspace", "order_day"], name="analytics_attribution_day"),
        ]

    def __str__(self) -> str:
        return f"order {self.order_key}: {self.touch or 'not attributed'}"


class DailyOrders(models.Model):
    """Every order of a workspace per day (its day in the workspace's zone), attributed or not:
    the shop's side of "how much of the revenue came through email"."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    orders = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "day"], name="analytics_daily_orders_unique")]

    def __str__(self) -> str:
        return f"{self.day}: {self.orders} orders"


class AttributionState(models.Model):
    """The attribution refresh's watermark over the event store (audiences.Event ids)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    event_id = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"events up to {self.event_id}"


class AttributionGap(models.Model):
    """An id range of the event store the watermark passed without a committed row (as
    EventGap for the message events): read again until it is GAP_LIFETIME old."""

    id = models.BigAutoField(primary_key=True)
    lo = models.BigIntegerField()
    hi = models.BigIntegerField()
    seen_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.lo}–{self.hi}"


# The journey, cohort and deliverability rollups, goals and the digest live in their own module.
from analytics.journey_models import (  # noqa: E402
    AudienceDay,
    CohortCell,
    CustomerMonth,
    DigestSent,
    DigestSettings,
    Goal,
    JourneyFlow,
    JourneySnapshot,
    PendingCustomer,
    ProviderDay,
)

__all__ = [
    "Attribution",
    "AttributionGap",
    "AttributionSettings",
    "AttributionState",
    "AudienceDay",
    "CohortCell",
    "CustomerMonth",
    "DailyOrders",
    "DailyRollup",
    "DigestSent",
    "DigestSettings",
    "EventGap",
    "Goal",
    "JourneyFlow",
    "JourneySnapshot",
    "MessageFact",
    "PendingCustomer",
    "PendingSent",
    "ProviderDay",
    "RefreshState",
]
