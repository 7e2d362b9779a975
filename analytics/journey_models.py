"""The rollups of the journey, cohort and deliverability reports, goals and the KPI digest's
bookkeeping. Every table here is derived (rebuildable from the raw rows by analytics.journey,
analytics.deliverability) except Goal and DigestSettings, which members write.

- `CustomerMonth`: per contact and month, the orders counted in that month and their revenue
  (refunds taken off the order they refund), as audiences.facts.purchases reads orders. The
  per-contact rollup cohorts and the journey are computed from.
- `CohortCell`: per month of first order (the cohort) and months since: customers active,
  orders, revenue, customers with two orders or more by then.
- `JourneySnapshot`: contacts per lifecycle stage, per RFM segment and a few monthly measures,
  month by month. Stages are recomputed from the order history; RFM segments are what the
  nightly scoring said in that month (a month's row is frozen once the month is over).
- `JourneyFlow`: how many contacts went from one stage at the end of a month to another at the
  end of the next ("new" for contacts who arrived in the month).
- `AudienceDay`: list growth per list and day (list 0: the workspace: contacts made,
  unsubscribes, hard bounces and complaints put on the suppression list).
- `ProviderDay`: per recipient mailbox provider and day, the counters deliverability needs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import Workspace


class CustomerMonth(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # A foreign key so that erasing a contact erases its rows too.
    contact = models.ForeignKey("audiences.Contact", on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField()
    orders = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    last_order_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "month"], name="analytics_customer_month")]
        indexes = [models.Index(fields=["workspace", "month"], name="analytics_customer_month_ws")]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.month}: {self.orders}"


class PendingCustomer(models.Model):
    """Contacts whose events changed (audiences' "events stored" hook) that the next journey
    refresh has not read yet."""

    contact_id = models.BigIntegerField(primary_key=True)
    workspace_id = models.BigIntegerField()

    def __str__(self) -> str:
        return str(self.contact_id)


class CohortCell(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    cohort = models.DateField()  # the first day of the month of the first order
    offset = models.PositiveSmallIntegerField()  # months since the cohort's month
    customers = models.IntegerField(default=0)  # the cohort's size
    active = models.IntegerField(default=0)  # customers of the cohort with an order in this month
    orders = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    repeaters = models.IntegerField(default=0)  # with two orders or more by the end of this month

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "cohort", "offset"], name="analytics_cohort_cell")]

    def __str__(self) -> str:
        return f"{self.cohort} +{self.offset}"


class SnapshotKind(models.TextChoices):
    STAGE = "stage", _("Lifecycle stage")
    RFM = "rfm", _("RFM segment")
    MEASURE = "measure", _("Measure")


class JourneySnapshot(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField()
    kind = models.CharField(max_length=16, choices=SnapshotKind.choices)
    value = models.CharField(max_length=32)
    contacts = models.BigIntegerField(default=0)
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "month", "kind", "value"], name="analytics_journey_snapshot")
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.kind} {self.value}: {self.contacts}"


class JourneyFlow(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField()
    source = models.CharField(max_length=16)
    target = models.CharField(max_length=16)
    contacts = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "month", "source", "target"], name="analytics_journey_flow")
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.source} → {self.target}: {self.contacts}"


class AudienceDay(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    list_id = models.BigIntegerField(default=0)  # 0: the whole workspace
    new = models.IntegerField(default=0)
    confirmed = models.IntegerField(default=0)
    unsubscribed = models.IntegerField(default=0)
    bounced = models.IntegerField(default=0)
    complained = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "day", "list_id"], name="analytics_audience_day")]

    def __str__(self) -> str:
        return f"{self.day} list {self.list_id}"


class ProviderDay(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    provider = models.CharField(max_length=16)
    sent = models.IntegerField(default=0)
    delivered = models.IntegerField(default=0)
    bounced = models.IntegerField(default=0)
    bounced_hard = models.IntegerField(default=0)
    complained = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "day", "provider"], name="analytics_provider_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}"


class TargetKind(models.TextChoices):
    ABSOLUTE = "absolute", _("A value")
    GROWTH = "growth", _("A change vs the same period last year (%)")


class Goal(models.Model):
    """A KPI (analytics.goals.kpis), a target, a period and an optional segment."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=120)
    kpi = models.CharField(_("measure"), max_length=32)
    target_kind = models.CharField(_("target"), max_length=16, choices=TargetKind.choices)
    # An absolute value (a rate as a percent: 0.1 for 0.1 %), or the change in percent.
    target_value = models.DecimalField(_("target value"), max_digits=16, decimal_places=4)
    start = models.DateField(_("first day"))
    end = models.DateField(_("last day"))
    segment = models.ForeignKey("audiences.Segment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["end", "id"]

    def __str__(self) -> str:
        return self.name


class DigestFrequency(models.TextChoices):
    OFF = "off", _("Never")
    DAILY = "daily", _("Every day")
    WEEKLY = "weekly", _("Every Monday")


class DigestSettings(models.Model):
    """Whether a member of a workspace gets the KPI digest, and how often."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    frequency = models.CharField(_("KPI digest"), max_length=8, choices=DigestFrequency.choices, default="off")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="analytics_digest_settings")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.frequency}"


class DigestSent(models.Model):
    """One digest of one period to one member: the unique key is what makes the beat job
    idempotent (never two digests for one week)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    frequency = models.CharField(max_length=8)
    period_start = models.DateField()
    message_id = models.BigIntegerField(null=True)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user", "frequency", "period_start"], name="analytics_digest_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.frequency} {self.period_start}"
