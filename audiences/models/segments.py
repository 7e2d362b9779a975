"""Segments: rule trees with their materialised membership."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import WorkspaceOwned


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
