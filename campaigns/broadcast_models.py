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
    sender = models.ForeignKey(
        "campaigns.SenderIdentity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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
