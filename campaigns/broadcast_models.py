"""Broadcasts: one-off campaigns to an audience (lists, segments, tags in; others out), sent now,
at a moment, or at a wall-clock time in each contact's own time zone, optionally spread over
hours. Registered with the campaigns app by campaigns.models (the module is split off only to
keep that file readable).

The audience is snapshotted when the broadcast starts: one `Message` per recipient (source
`broadcast:<id>`, each with its own `due_at`) made by one INSERT … SELECT; from then on the send
road (campaigns.delivery) treats them as any marketing mail, with the checks at send time.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import WorkspaceOwned

# Inbox lists show some 40–130 characters after the subject; more is cut.
MAX_PREHEADER_CHARS = 255


class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class SendMode(models.TextChoices):
    NOW = "now", _("Now")
    AT = "at", _("At a date and time")
    LOCAL = "local", _("At a time in each contact's time zone")


class Broadcast(WorkspaceOwned):
    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(
        _("status"), max_length=16, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT
    )
    # Who gets it: ids of the workspace's lists and segments, and tags; a contact in any
    # "include" and in no "exclude" is in the audience.
    include_lists = ArrayField(models.BigIntegerField(), default=list, blank=True)
    include_segments = ArrayField(models.BigIntegerField(), default=list, blank=True)
    include_tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    exclude_lists = ArrayField(models.BigIntegerField(), default=list, blank=True)
    exclude_segments = ArrayField(models.BigIntegerField(), default=list, blank=True)
    exclude_tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # What: a template of the workspace, its subject replaced when one is set here.
    template = models.ForeignKey(
        "campaigns.EmailTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject = models.CharField(_("subject"), max_length=998, blank=True, default="")
    preheader = models.CharField(_("preheader"), max_length=MAX_PREHEADER_CHARS, blank=True, default="")
    sender = models.ForeignKey(
        "campaigns.SenderIdentity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Tracking: None follows the workspace's delivery settings. The UTM parameters are added to
    # (and win over) the workspace's, e.g. {"utm_campaign": "spring-sale"}.
    track_opens = models.BooleanField(_("track opens"), null=True, blank=True)
    track_clicks = models.BooleanField(_("track clicks"), null=True, blank=True)
    utm_parameters = models.JSONField(_("UTM parameters"), default=dict, blank=True)
    provider = models.ForeignKey(
        "campaigns.Provider", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When: now, at `send_at`, or at the wall-clock `local_at` in each contact's zone (the
    # workspace's for contacts without one); then spread over `throttle_hours` when set.
    send_mode = models.CharField(_("when"), max_length=8, choices=SendMode.choices, default=SendMode.NOW)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    local_at = models.DateTimeField(_("local date and time"), null=True, blank=True)  # read as a wall clock
    throttle_hours = models.PositiveSmallIntegerField(_("spread over hours"), null=True, blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), default=10)  # campaigns.SendPriority
    # The snapshot: when it was taken and how many messages it made.
    started_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)
    # Who the audience held but the snapshot left out, by reason: {"no_consent": n, "suppressed": n}.
    excluded = models.JSONField(default=dict, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="broadcast_recent"),
            # The beat looks for scheduled broadcasts falling due and sending ones to finish.
            models.Index(
                fields=["status"], condition=models.Q(status__in=["scheduled", "sending"]), name="broadcast_active"
            ),
        ]

    def __str__(self) -> str:
        return self.name


# A/B split tests. A test sends each variant to an even share of a test group (a deterministic,
# hash-ordered `test_percent` of the recipients), waits, compares the variants on one metric and
# sends the winner to the rest. Every message of the broadcast, test or rest, has the same source
# `broadcast:<id>`, so the unique (workspace, source, contact) index lets nobody get two.


class AbMetric(models.TextChoices):
    # Message.opened_at is the first human open: machine opens (privacy proxies) never set it.
    OPENS = "opens", _("Unique opens")
    CLICKS = "clicks", _("Unique clicks")
    CLICK_TO_OPEN = "click_to_open", _("Click-to-open")


class WinnerMode(models.TextChoices):
    AUTOMATIC = "automatic", _("Automatically, by the metric")
    MANUAL = "manual", _("The marketer picks")


class AbState(models.TextChoices):
    SETUP = "setup", _("Set up")  # the broadcast has not started
    TESTING = "testing", _("Testing")  # the test group is being sent, then the wait
    AWAITING_PICK = "awaiting_pick", _("Waiting for a pick")  # manual: the wait is over
    DECIDED = "decided", _("Decided")  # the winner went to the rest
    CANCELLED = "cancelled", _("Cancelled")  # the broadcast was cancelled before a decision


class BroadcastTest(WorkspaceOwned):
    """A broadcast's A/B test: the test group's size, what decides, how long to wait, and, once
    decided, the winner and why (in words, kept as they were said)."""

    broadcast = models.OneToOneField(Broadcast, on_delete=models.CASCADE, related_name="ab_test")
    test_percent = models.PositiveSmallIntegerField(_("test group, % of the recipients"), default=20)
    metric = models.CharField(_("winning metric"), max_length=16, choices=AbMetric.choices, default=AbMetric.OPENS)
    wait_hours = models.PositiveSmallIntegerField(_("wait, hours"), default=4)
    winner_mode = models.CharField(
        _("winner chosen"), max_length=16, choices=WinnerMode.choices, default=WinnerMode.AUTOMATIC
    )
    state = models.CharField(_("state"), max_length=16, choices=AbState.choices, default=AbState.SETUP)
    # The earliest moment a decision can come: the test group's last due time plus the wait
    # (the tick then also waits for every test message to be sent and `wait_hours` to pass).
    decide_after = models.DateTimeField(null=True, blank=True)
    winner = models.CharField(_("winner"), max_length=1, blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)  # 0–1, at the decision
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.TextField(_("reason"), blank=True, default="")
    rest_recipients = models.PositiveIntegerField(default=0)  # messages of the winner to the rest

    class Meta:
        indexes = [
            # The beat looks for tests waiting for their decision.
            models.Index(fields=["state"], condition=models.Q(state="testing"), name="broadcast_test_waiting"),
        ]


class BroadcastVariant(WorkspaceOwned):
    """One variant of a test: what differs from the broadcast (an empty field is the broadcast's).

    A send-time variant is a delay: its test messages fall due `send_delay_hours` after the
    broadcast's own time (each contact's local time for a local-time broadcast). The rest is
    sent when the winner is chosen, so a delay applies to the test group only."""

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="variants")
    letter = models.CharField(_("variant"), max_length=1)
    subject = models.CharField(_("subject"), max_length=998, blank=True, default="")
    preheader = models.CharField(_("preheader"), max_length=MAX_PREHEADER_CHARS, blank=True, default="")
    template = models.ForeignKey(
        "campaigns.EmailTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sender = models.ForeignKey(
        "campaigns.SenderIdentity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    send_delay_hours = models.PositiveSmallIntegerField(_("send later by, hours"), default=0)

    class Meta:
        ordering = ["letter"]
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "letter"], name="broadcast_variant_unique_letter"),
            models.CheckConstraint(
                condition=models.Q(letter__in=["A", "B", "C", "D"]), name="broadcast_variant_letter"
            ),
        ]

    def __str__(self) -> str:
        return self.letter
