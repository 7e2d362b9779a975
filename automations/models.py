"""Series (drip campaigns), their immutable versions, the enrollments that walk them and the
trace of every step run.

A series' steps live in a `SeriesVersion` (validated JSON, see automations/steps): once
published a version never changes, and every enrollment keeps the version it entered with, so
editing a live series never moves, loses or re-runs the people inside it.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import Workspace, WorkspaceOwned


class SeriesKind(models.TextChoices):
    WELCOME = "welcome", _("Welcome")
    TRIGGER = "trigger", _("Triggered")
    PROMO = "promo", _("Promo")
    TRANSACTIONAL = "transactional", _("Transactional")


class SeriesStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    LIVE = "live", _("Live")
    PAUSED = "paused", _("Paused")
    ARCHIVED = "archived", _("Archived")


class ReEntry(models.TextChoices):
    ONCE = "once", _("Once ever")
    PERIOD = "period", _("Once per period")
    ALWAYS = "always", _("Every time")


def new_webhook_secret() -> str:
    """A series' key for signing its outbound webhooks (HMAC-SHA256), 256 random bits."""
    return secrets.token_hex(32)


class Series(WorkspaceOwned):
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=SeriesKind.choices, default=SeriesKind.TRIGGER)
    status = models.CharField(_("status"), max_length=16, choices=SeriesStatus.choices, default=SeriesStatus.DRAFT)
    # What enrolls a contact (automations/triggers.py): {"type": "event", "event": …, "where": […],
    # "key": "cart_id"} and the other trigger types.
    trigger = models.JSONField(_("trigger"), default=dict)
    # A segment rule tree every contact must match at entry and again before every send
    # ("has not ordered in the last 30 days"); empty matches everyone.
    flow_filter = models.JSONField(_("flow filter"), default=dict, blank=True)
    # An event that ends an enrollment as converted whenever it arrives: {"event": …, "where":
    # […], "keyed": true} (keyed: the event's entry-key property must equal the entry's key).
    goal = models.JSONField(_("goal"), default=dict, blank=True)
    re_entry = models.CharField(_("re-entry"), max_length=8, choices=ReEntry.choices, default=ReEntry.ONCE)
    re_entry_days = models.PositiveSmallIntegerField(_("re-entry period (days)"), null=True, blank=True)
    # campaigns.models.SendPriority: under a frequency cap the most important mail goes.
    priority = models.PositiveSmallIntegerField(_("priority"), default=20)
    smart_sending = models.BooleanField(_("smart sending"), default=True)
    holdout_percent = models.PositiveSmallIntegerField(_("holdout %"), default=0)
    live_version = models.ForeignKey(
        "SeriesVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set on resume: a send step that fell due before this moment while the series was paused
    # is skipped (stale mail), not sent.
    stale_before = models.DateTimeField(null=True, blank=True)
    # A promo start runs once: when its audience entered.
    started_at = models.DateTimeField(null=True, blank=True)
    # A date trigger (birthdays, replenishment): the moments up to here were looked at; the next
    # check enrolls those whose moment came after it.
    dates_checked_until = models.DateTimeField(null=True, blank=True)
    # Signs the series' outbound webhooks; shown to the marketer, who gives it to the receiver.
    webhook_secret = models.CharField(_("webhook signing secret"), max_length=64, default=new_webhook_secret)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = _("series")
        indexes = [models.Index(fields=["workspace", "status"], name="series_workspace_status")]

    def __str__(self) -> str:
        return self.name


class SeriesVersion(WorkspaceOwned):
    """The step graph of a series. A draft (published_at empty) may be edited; a published
    version never changes."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # {"start": "<key>", "steps": [{"key": …, "type": …, …}, …]} — see automations/steps.
    steps = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # Who published it (the versions list says who changed what); empty for the API's key or a
    # user since deleted.
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["series", "number"], name="series_version_number")]

    def __str__(self) -> str:
        return f"{self.series_id} v{self.number}"

    def step(self, key: str) -> dict[str, Any] | None:
        for step in self.steps.get("steps", []):
            if step.get("key") == key:
                return step  # type: ignore[no-any-return]
        return None


class DraftChange(WorkspaceOwned):
    """One edit the builder made to a draft: the steps as they were before it, so "undo" puts
    them back. Only a draft's recent changes are kept (automations.editing.UNDO_DEPTH)."""

    version = models.ForeignKey(SeriesVersion, on_delete=models.CASCADE, related_name="changes")
    steps_before = models.JSONField()
    # What the edit did, in words for the undo button ("inserted a wait after welcome").
    what = models.CharField(max_length=300)
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    made_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", _("Active")
    WAITING = "waiting", _("Waiting")
    COMPLETED = "completed", _("Completed")
    CONVERTED = "converted", _("Converted")
    EXITED = "exited", _("Exited")
    FAILED = "failed", _("Failed")


LIVE_STATES = (EnrollmentState.ACTIVE, EnrollmentState.WAITING)


class Enrollment(WorkspaceOwned):
    """One contact's walk through one version of a series. Live while `ended_at` is empty;
    the engine runs it when `due_at` passes (a wait's end, a timeout) or an awaited event
    arrives."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    version = models.ForeignKey(SeriesVersion, on_delete=models.PROTECT, related_name="+", db_index=False)
    contact = models.ForeignKey(
        "audiences.Contact", on_delete=models.CASCADE, related_name="enrollments", db_index=False
    )
    # What makes two enrollments of one contact different ("cart_id" of the trigger event):
    # one live enrollment per (series, contact, key).
    entry_key = models.CharField(max_length=200, blank=True, default="")
    # The trigger event's properties: the email's `event`.
    entry_data = models.JSONField(default=dict, blank=True)
    entry_event_id = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE)
    step_key = models.CharField(max_length=64, blank=True, default="")
    step_started_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    # A wait-for-event step: the event name and the key its properties must carry; set when it
    # arrives (`wait_met_event_id`), so the step goes on by its "yes" branch.
    wait_event = models.CharField(max_length=200, blank=True, default="")
    wait_key = models.CharField(max_length=200, blank=True, default="")
    wait_met_event_id = models.BigIntegerField(null=True, blank=True)
    holdout = models.BooleanField(default=False)
    entered_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True, default="")
    # Step runs so far: a guard against a graph that would loop without end.
    hops = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # Eight identical triggers at once make one enrollment: the others conflict here.
            models.UniqueConstraint(
                fields=["series", "contact", "entry_key"],
                condition=models.Q(ended_at__isnull=True),
                name="enrollment_one_live_per_key",
            )
        ]
        indexes = [
            # The tick: live enrollments falling due, oldest first.
            models.Index(fields=["due_at"], condition=models.Q(ended_at__isnull=True), name="enrollment_due"),
            # Events of a contact resolve its waits and goals; a profile lists its enrollments.
            models.Index(fields=["contact", "series"], name="enrollment_contact"),
            models.Index(
                fields=["contact", "wait_event"],
                condition=models.Q(ended_at__isnull=True) & ~models.Q(wait_event=""),
                name="enrollment_waiting_event",
            ),
            # A series page: its enrollments newest first, and its counts per step.
            models.Index(fields=["series", "-id"], name="enrollment_series_recent"),
            # The holdout lift of a period (analytics.lift): who entered the series in it.
            models.Index(fields=["series", "entered_at"], name="enrollment_series_entered"),
            models.Index(
                fields=["series", "step_key"], condition=models.Q(ended_at__isnull=True), name="enrollment_series_step"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.series_id}:{self.contact_id}:{self.entry_key}"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None


class TraceOutcome(models.TextChoices):
    ENTERED = "entered", _("Entered")
    SENT = "sent", _("Email queued")
    HELD_OUT = "held_out", _("Held out")
    SKIPPED = "skipped", _("Skipped")
    WAITING = "waiting", _("Waiting")
    WAITED = "waited", _("Wait over")
    BRANCHED = "branched", _("Branched")
    UPDATED = "updated", _("Contact updated")
    WEBHOOK = "webhook", _("Webhook called")
    NOTIFIED = "notified", _("Team notified")
    CONVERTED = "converted", _("Converted")
    EXITED = "exited", _("Exited")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


class Trace(WorkspaceOwned):
    """One step run of one enrollment, with the why: "skipped: smart sending", "branch: yes
    (has ordered)", "converted: Order Completed at 14:02"."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="traces", db_index=False)
    # Copied from the enrollment so that a series' counts per step read one table.
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+", db_index=False)
    step_key = models.CharField(max_length=64, blank=True, default="")
    ran_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=TraceOutcome.choices)
    reason = models.CharField(max_length=400, blank=True, default="")
    # The branch taken by a condition, split or wait-for-event step ("yes", "no", "b2").
    branch = models.CharField(max_length=32, blank=True, default="")
    message = models.ForeignKey(
        "campaigns.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        indexes = [
            models.Index(fields=["enrollment", "id"], name="trace_enrollment"),
            models.Index(fields=["series", "step_key", "outcome"], name="trace_series_step"),
            # A series' counts over a period and the people behind a count, newest first: the
            # rows of a series (and step) from a moment on, in time order.
            models.Index(fields=["series", "step_key", "ran_at"], name="trace_series_step_time"),
            models.Index(fields=["message"], condition=models.Q(message__isnull=False), name="trace_message"),
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id} {self.step_key} {self.outcome}"


class WebhookDelivery(WorkspaceOwned):
    """An outbound webhook of a step: a row with `due_at`, retried with backoff by the beat
    tick until it answers 2xx or runs out of attempts."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="+", db_index=False)
    step_key = models.CharField(max_length=64)
    url = models.URLField(max_length=2000)
    body = models.JSONField(default=dict)
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=400, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enrollment", "step_key"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["due_at"], condition=models.Q(due_at__isnull=False), name="webhook_due")]


class PendingHook(WorkspaceOwned):
    """A hook of audiences (events stored, a list joined, a segment changed, contacts left)
    that the engine has heard but not yet handled. Written when the hook is heard, before its
    task is sent, and deleted in the transaction that handles it: a broker that is down, a task
    lost or a worker killed leaves the row, and the beat tick handles it later."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # automations.engine.inbox.HANDLERS: "events", "subscribed", "segment", "left".
    kind = models.CharField(max_length=16)
    payload = models.JSONField(default=dict)
    # When the tick may take it: a while after it was heard (its task normally handles it
    # first), later again after each failure.
    due_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="pending_hook_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"
