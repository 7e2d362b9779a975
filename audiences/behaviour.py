"""What contacts do and what is derived from it: the event store fed by the Segment-compatible
API, the identity graph that ties anonymous visitors to contacts, purchase facts with RFM
scores and lifecycle stages, and segments with their materialised membership.

audiences.models imports this module on its last line; this module therefore imports nothing
from audiences.models and names its foreign keys by string.

Sizing: tens of millions of events per workspace. Every index of Event is paid by every
ingested row, so there are exactly the ones the reads need:
- (workspace, message_id) unique — idempotent ingestion (DESIGN rule 5);
- (workspace, name, occurred_at) INCLUDE (contact) — segment conditions and the explorer ("did X
  in the last N days" is one index-only range scan grouped by contact);
- (contact, occurred_at) — the timeline, per-contact facts, and cascading deletes;
- two small partial indexes over events not yet tied to a contact, for the identity merge.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import Workspace, WorkspaceOwned


class EventType(models.TextChoices):
    TRACK = "track", _("Track")
    IDENTIFY = "identify", _("Identify")
    PAGE = "page", _("Page")
    SCREEN = "screen", _("Screen")
    ALIAS = "alias", _("Alias")
    GROUP = "group", _("Group")


class Event(WorkspaceOwned):
    """One call of the tracking API, stored as sent (after clock-skew correction)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Null while the sender is only known by an anonymousId or a userId no contact has yet;
    # set when identify/alias links them (the partial indexes below find these rows).
    contact = models.ForeignKey(
        "audiences.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    type = models.CharField(max_length=16, choices=EventType.choices)
    # The track event's name ("Order Completed"), or the page/screen name; empty otherwise.
    name = models.CharField(max_length=200, blank=True, default="")
    # track/page/screen properties; identify traits; alias {"previousId": …}.
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    user_id = models.CharField(max_length=255, blank=True, default="")
    anonymous_id = models.CharField(max_length=255, blank=True, default="")
    message_id = models.CharField(max_length=255)
    # When it happened (the sender's timestamp corrected by sentAt), apart from when it
    # arrived: late and out-of-order events still land in the right place in time.
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "message_id"], name="event_unique_message_id")]
        indexes = [
            # contact_id rides along so that "did X ≥ N times in the last N days" is answered
            # by an index-only scan, without visiting the heap of millions of events.
            models.Index(
                fields=["workspace", "name", "occurred_at"], include=["contact"], name="event_workspace_name_time"
            ),
            models.Index(fields=["contact", "-occurred_at"], name="event_contact_recent"),
            # A contact's orders and refunds (purchase facts): without it a batch of contacts
            # reads every event of theirs, a heap page each, to keep one in ten.
            models.Index(
                fields=["contact"],
                condition=models.Q(type="track", name__in=["Order Completed", "Order Refunded"]),
                name="event_contact_orders",
            ),
            models.Index(
                fields=["workspace", "anonymous_id"],
                condition=models.Q(contact__isnull=True) & ~models.Q(anonymous_id=""),
                name="event_unlinked_anonymous",
            ),
            models.Index(
                fields=["workspace", "user_id"],
                condition=models.Q(contact__isnull=True) & ~models.Q(user_id=""),
                name="event_unlinked_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()


class RecentEvent(WorkspaceOwned):
    """The n-th most recent time (n = 1..RECENT_EVENT_DEPTH) a contact did a named event: "did
    X at least N times in the last D days" is then the index range (X, N, since D days) — one
    row per matching contact — instead of grouping every such event of the workspace.
    Recomputed per contact from its events (never incremented), so replays, late events and
    identity merges leave it right; kept by the ingestion pipeline for workspaces whose table
    is complete (RecentEventsBuilt)."""

    pk = models.CompositePrimaryKey("contact_id", "name", "nth")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey("audiences.Contact", on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=200)
    nth = models.PositiveSmallIntegerField()
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "name", "nth", "occurred_at"], include=["contact"], name="recent_event_lookup"
            )
        ]


class RecentEventsBuilt(WorkspaceOwned):
    """The workspace's RecentEvent rows are complete (built by `recent_events_rebuild`) and kept
    by the pipeline; segments read them only then. `started_at` alone: a build is under way,
    and the pipeline already keeps what it touches."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField()
    built_at = models.DateTimeField(null=True)


class ContactAlias(WorkspaceOwned):
    """Another id the same person was seen under: an anonymousId linked by identify, or a
    previousId linked by alias. A userId is the contact's external_id and needs no alias."""

    contact = models.ForeignKey("audiences.Contact", on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "alias"], name="contact_alias_unique")]


class PendingEvents(WorkspaceOwned):
    """Events stored but not yet processed downstream (facts, identity merge, segment changes,
    later series triggers). Written in the same transaction as the events, deleted by the task
    that processed them; a beat sweeper re-enqueues rows left behind by a broker outage or a
    dead worker. One row per ingest request, not per event."""

    event_ids = ArrayField(models.BigIntegerField())
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="pending_events_age")]


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
        ]


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


class LifecycleSettings(WorkspaceOwned):
    """The workspace's thresholds for lifecycle stages. Empty day thresholds mean "derive
    from this workspace's own median days between orders"."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    loyal_min_orders = models.PositiveSmallIntegerField(_("orders to count as loyal"), default=4)
    at_risk_after_days = models.PositiveIntegerField(_("at risk after days without an order"), null=True, blank=True)
    lapsed_after_days = models.PositiveIntegerField(_("lapsed after days without an order"), null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)


class Segment(WorkspaceOwned):
    """A rule tree (see audiences.segments) kept as JSON and compiled to one SQL query; its
    membership is materialised so that series can start on "entered" / "left"."""

    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, default="")
    rules = models.JSONField(default=dict)
    member_count = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="segment_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(WorkspaceOwned):
    """One stay of a contact in a segment: entered_at, and exited_at once it left. A contact
    that comes back gets a new row, so the history of entering and leaving is kept."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey("audiences.Contact", on_delete=models.CASCADE, related_name="segment_memberships")
    entered_at = models.DateTimeField(default=timezone.now)
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "contact"], condition=models.Q(exited_at__isnull=True), name="segment_member_current"
            )
        ]
        indexes = [models.Index(fields=["contact", "-entered_at"], name="segment_member_contact")]
