"""Long jobs of the audience: CSV imports and exports, bulk actions on contacts. Each job is a row that holds its whole
state (file, mapping, offsets, counts), so the page reads progress from it and a worker that
died mid-way can be replaced by another that resumes from the last committed batch.

audiences.models imports this module on its last line; this module therefore imports nothing
from audiences.models and names its foreign keys by string."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import WorkspaceOwned

# A running job writes a heartbeat with every committed batch (a batch takes about a second);
# one that has been silent this long lost its worker and may be claimed by another.
STALE_AFTER = dt.timedelta(minutes=10)


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
        """Queued or running without a sign of life: its worker is gone (it will be resumed)."""
        return self.is_active and self.heartbeat_at is not None and self.heartbeat_at < timezone.now() - STALE_AFTER


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


# --- the job machinery shared by imports, exports and bulk actions --------------------------

J = TypeVar("J", ImportJob, ExportJob, BulkJob)


def media_path(relative: str) -> Path:
    """Job files (uploads, error reports, exports) live under MEDIA_ROOT; rows keep the
    relative path."""
    return Path(settings.MEDIA_ROOT) / relative


@dataclass(frozen=True)
class JobFile:
    """A file a page offers for download:
    `FileResponse(job_file.path.open("rb"), as_attachment=True, filename=job_file.filename)`."""

    path: Path
    filename: str
    content_type: str = "text/csv"


# Spreadsheets run a cell that starts with one of these as a formula (CSV injection, OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """A cell for a CSV file a person will open in a spreadsheet: a leading quote makes a
    would-be formula plain text."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def job_claim(model: type[J], job_id: int) -> J | None:
    """Take a queued job, or a running one whose worker fell silent, for this worker. One
    UPDATE decides it, so of two workers handed the same job (a redelivered task) one wins.
    The returned job's `attempts` is this worker's token for its later writes."""
    now = timezone.now()
    claimed = model.objects.filter(
        Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER), pk=job_id
    ).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=Coalesce("started_at", Value(now, output_field=models.DateTimeField())),
        heartbeat_at=now,
    )
    if not claimed:
        return None
    return model.objects.select_related("workspace").get(pk=job_id)  # type: ignore[no-any-return]


def jobs_stalled_requeue(model: type[ImportJob] | type[ExportJob] | type[BulkJob]) -> list[int]:
    """Ids of the jobs to hand to a worker again: running ones whose worker died (set back to
    queued) and queued ones whose task was lost on the way (e.g. a broker restart)."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            model.objects.select_for_update(skip_locked=True)
            .filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], heartbeat_at__lt=now - STALE_AFTER)
            .values_list("pk", flat=True)
        )
        model.objects.filter(pk__in=ids).update(status=JobStatus.QUEUED, heartbeat_at=now)
    return ids
