"""Long jobs of the audience: CSV imports and exports, bulk actions on contacts. Each job is a row that holds its whole
state (file, mapping, offsets, counts), so the page reads progress from it and a worker that
died mid-way can be replaced by another that resumes from the last committed batch."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import WorkspaceOwned

# A running job's worker writes a heartbeat every few seconds from a thread of its own (see
# job_heartbeat), so a job silent for STALE_AFTER lost its worker (killed, host gone) and is
# queued again within about a minute. A queued job has no worker to beat for it yet: only one
# waiting QUEUED_STALE_AFTER is taken for a lost task (a broker restart) and queued again.
HEARTBEAT_EVERY = 5.0
STALE_AFTER = dt.timedelta(seconds=30)
QUEUED_STALE_AFTER = dt.timedelta(minutes=10)


class JobStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportMode(models.TextChoices):
    UPDATE_EXISTING = "update_existing", _("Add new contacts and update existing ones")
    SKIP_EXISTING = "skip_existing", _("Add new contacts only; leave existing ones as they are")


class _Job(WorkspaceOwned):
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("processed rows"), default=0)
    error_message = models.TextField(_("error"), blank=True, default="")
    # Incremented by each claim; a worker writes only while the count is still its own, so a
    # worker that was presumed dead cannot write over the one that took its job over.
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def percent(self) -> int:
        if self.status == JobStatus.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(99, self.processed_rows * 100 // self.total_rows)

    @property
    def is_active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def is_stalled(self) -> bool:
        """Running without a sign of life: its worker is gone (it will be resumed)."""
        return (
            self.status == JobStatus.RUNNING
            and self.heartbeat_at is not None
            and self.heartbeat_at < timezone.now() - STALE_AFTER
        )

    @property
    def is_resuming(self) -> bool:
        """Its worker was lost: it waits to be picked up again, or was queued again after a
        worker had started it (it goes on from its last committed batch)."""
        return self.is_stalled or (self.status == JobStatus.QUEUED and self.attempts > 0)

    @property
    def status_label(self) -> str:
        return str(_("Resuming")) if self.is_resuming else self.get_status_display()  # type: ignore[attr-defined]


class ImportJob(_Job):
    """One uploaded CSV file and its import. `file_path` and `error_report` are relative to
    MEDIA_ROOT. `resume_offset` counts the data records (after the header) whose effect is
    committed; `error_report_size` is the length of the report at that point, so a resumed run
    cuts off what a dead worker wrote after its last commit."""

    status = models.CharField(_("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.UPLOADED)
    file_path = models.CharField(max_length=255)
    original_filename = models.CharField(_("file name"), max_length=255)
    file_size = models.BigIntegerField(default=0)
    delimiter = models.CharField(_("delimiter"), max_length=1, default=",")
    encoding = models.CharField(_("encoding"), max_length=32, default="utf-8-sig")
    header = ArrayField(models.TextField(), default=list, blank=True)
    # CSV column name -> contact field ("email", "first_name", ..., "attributes.<key>").
    mapping = models.JSONField(default=dict, blank=True)
    mailing_list = models.ForeignKey(
        "audiences.MailingList", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # One of audiences.models.ConsentSource (checked by the service).
    consent_source = models.CharField(_("consent source"), max_length=16, blank=True, default="import")
    consent_text = models.TextField(_("consent text"), blank=True, default="")
    mode = models.CharField(_("mode"), max_length=16, choices=ImportMode.choices, default=ImportMode.UPDATE_EXISTING)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected_count = models.PositiveIntegerField(_("rejected"), default=0)
    resume_offset = models.PositiveIntegerField(default=0)
    error_report = models.CharField(max_length=255, blank=True, default="")
    error_report_size = models.BigIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="import_job_workspace_recent"),
            models.Index(
                fields=["heartbeat_at"], condition=models.Q(status__in=["queued", "running"]), name="import_job_active"
            ),
        ]

    def __str__(self) -> str:
        return self.original_filename

    @property
    def encoding_label(self) -> str:
        """The detected encoding as a person names it, not as Python's codecs do."""
        return str(ENCODING_LABELS.get(self.encoding, self.encoding))


# The encodings imports.formats._detect_encoding answers, by the names spreadsheet programs use.
ENCODING_LABELS = {
    "utf-8": _("UTF-8"),
    "utf-8-sig": _("UTF-8 (with byte order mark)"),
    "utf-16": _("UTF-16"),
    "cp1251": _("Windows-1251 (Cyrillic)"),
    "latin-1": _("Latin-1 (Western European)"),
}


class ExportJob(_Job):
    """A CSV export of the contacts matching `filter` ({"list_id", "status", "tag", "q"}).
    `columns` is fixed when the job starts, so a resumed run writes the same columns;
    `last_contact_id` and `file_size` are the keyset position and file length of the last
    committed batch."""

    filter = models.JSONField(default=dict, blank=True)
    columns = ArrayField(models.CharField(max_length=80), default=list, blank=True)
    file_path = models.CharField(max_length=255, blank=True, default="")
    file_size = models.BigIntegerField(default=0)
    last_contact_id = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="export_job_workspace_recent"),
            models.Index(
                fields=["heartbeat_at"], condition=models.Q(status__in=["queued", "running"]), name="export_job_active"
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk}"


class BulkAction(models.TextChoices):
    TAG = "tag", _("Add tag")
    UNTAG = "untag", _("Remove tag")
    SUBSCRIBE = "subscribe", _("Add to list")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe from list")
    DELETE = "delete", _("Delete")


class BulkJob(_Job):
    """One bulk action on every contact matching `filter` (audiences.filters.ContactFilter's
    to_data). The matching contacts are written to BulkJobContact once, when the job starts:
    the action reaches the contacts the marketer was shown, not those a tag it adds or removes
    would match midway. Each batch takes its contacts off that list in the transaction that
    changes them, so a resumed run carries on exactly where the last commit left it."""

    action = models.CharField(_("action"), max_length=16, choices=BulkAction.choices)
    value = models.CharField(_("tag or list"), max_length=64, blank=True, default="")
    filter = models.JSONField(default=dict, blank=True)
    snapshot_taken = models.BooleanField(default=False)
    changed_count = models.PositiveIntegerField(_("changed"), default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="bulk_job_workspace_recent"),
            models.Index(
                fields=["heartbeat_at"], condition=models.Q(status__in=["queued", "running"]), name="bulk_job_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.pk}"


class BulkJobContact(models.Model):
    """A contact a bulk job has still to act on (see BulkJob)."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["job", "contact_id"], name="bulk_job_contact")]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.contact_id}"
