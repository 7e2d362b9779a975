"""What contacts do: the event store fed by the Segment-compatible API, and the identity graph
that ties anonymous visitors to contacts.

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
