"""CSV exports of contacts:

    job = export_create(workspace=ws, user=user, filter={"list_id": 3, "status": "subscribed"})
    export_get(workspace=ws, job_id=job.pk)     # progress: status, processed_rows/total_rows
    export_file(job)                            # the finished file, for download

The worker (task `audiences.run_export`) calls `export_run`: it walks the matching contacts by
keyset pagination on id, 5,000 at a time, and appends them to the file; each batch commits its
position and the file's length with the job, so a run that died resumes where it left off.
Cells that a spreadsheet would run as a formula are made plain text (CSV injection)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
import uuid
from dataclasses import dataclass
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.filters import (
    ContactFilter,
    contact_filter_check,
    contacts_matching,
    filter_field_choices,
    filter_operator_choices,
)
from audiences.jobs.machinery import JobFile, job_claim, job_heartbeat, jobs_stalled_requeue, media_path, safe_cell
from audiences.models import Contact, CustomField, ExportJob, JobStatus, MailingList, Segment, SubscriptionStatus
from esp.models import User, Workspace
from esp.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

EXPORT_BATCH = 5_000
STANDARD_COLUMNS = (
    "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city", "country",
    "time_zone", "locale", "tags",
)  # fmt: skip


# --- selectors ------------------------------------------------------------------------------


def export_list(*, workspace: Workspace) -> QuerySet[ExportJob]:
    return ExportJob.objects.in_workspace(workspace).select_related("created_by")


@dataclass(frozen=True)
class ExportRow:
    """A recent export as its row shows it: the job and its filter in words."""

    job: ExportJob
    filter_summary: str


def export_rows(*, workspace: Workspace, limit: int) -> list[ExportRow]:
    """The latest exports, each with its filter as a person reads it ("List: Newsletter ·
    Tag: vip"), not as stored ({"list_id": 1}); list names come in one query."""
    jobs = list(export_list(workspace=workspace)[:limit])
    list_ids = {job.filter.get("list_id") for job in jobs if isinstance(job.filter, dict)} - {None}
    names = dict(MailingList.objects.in_workspace(workspace).filter(pk__in=list_ids).values_list("pk", "name"))
    segment_ids = {job.filter.get("segment_id") for job in jobs if isinstance(job.filter, dict)} - {None}
    segments = dict(Segment.objects.in_workspace(workspace).filter(pk__in=segment_ids).values_list("pk", "name"))
    statuses = dict(SubscriptionStatus.choices)
    fields = (
        dict(filter_field_choices(workspace=workspace))
        if any(isinstance(job.filter, dict) and job.filter.get("attr") for job in jobs)
        else {}
    )
    operators = dict(filter_operator_choices())
    rows = []
    for job in jobs:
        data = job.filter if isinstance(job.filter, dict) else {}
        parts = []
        if data.get("list_id"):
            parts.append(_("List: %(name)s") % {"name": names.get(data["list_id"], _("(deleted list)"))})
        if data.get("status"):
            parts.append(_("Status: %(status)s") % {"status": statuses.get(data["status"], data["status"])})
        if data.get("tag"):
            parts.append(_("Tag: %(tag)s") % {"tag": data["tag"]})
        if data.get("q"):
            parts.append(_("Search: “%(query)s”") % {"query": data["q"]})
        if data.get("attr"):
            parts.append(
                f"{fields.get(data['attr'], data['attr'])} {operators.get(data.get('attr_op', ''), '')} "
                f"{data.get('attr_value', '')}".strip()
            )
        if data.get("segment_id"):
            parts.append(_("Segment: %(name)s") % {"name": segments.get(data["segment_id"], _("(deleted segment)"))})
        rows.append(ExportRow(job=job, filter_summary=" · ".join(parts) or _("All contacts")))
    return rows


def export_get(*, workspace: Workspace, job_id: int) -> ExportJob:
    """The job, or 404 when it is not this workspace's."""
    return get_object_or_404(export_list(workspace=workspace), pk=job_id)  # type: ignore[no-any-return]


def export_file(job: ExportJob) -> JobFile:
    """The finished file; 404 while the export runs or when it failed."""
    path = media_path(job.file_path) if job.file_path else None
    if job.status != JobStatus.DONE or path is None or not path.exists():
        raise Http404(_("This export has no file yet."))
    return JobFile(path, f"contacts-{job.created_at:%Y-%m-%d}-{job.pk}.csv")


def export_contacts(*, workspace: Workspace, contact_filter: dict[str, Any]) -> QuerySet[Contact]:
    """The contacts a (cleaned) export filter means: the same rules as the contacts page."""
    return contacts_matching(workspace=workspace, contact_filter=ContactFilter.from_data(contact_filter))


def _clean_filter(workspace: Workspace, data: dict[str, Any]) -> dict[str, Any]:
    """{"list_id": int, "status": one of SubscriptionStatus (with a list only), "tag": str,
    "q": search in email and names, "attr"/"attr_op"/"attr_value": a contact-field condition,
    "segment_id": int}; all optional, empty means every contact."""
    cleaned: dict[str, Any] = {}
    if data.get("list_id"):
        try:
            list_id = int(data["list_id"])
        except (TypeError, ValueError) as error:
            raise ValidationError({"list_id": _("Choose a list.")}) from error
        cleaned["list_id"] = get_object_or_404(MailingList.objects.in_workspace(workspace), pk=list_id).pk
    if data.get("status"):
        if "list_id" not in cleaned:
            raise ValidationError({"status": _("A subscription status needs a list.")})
        if data["status"] not in SubscriptionStatus.values:
            raise ValidationError({"status": _("Unknown status.")})
        cleaned["status"] = data["status"]
    for key in ("tag", "q"):
        value = str(data.get(key) or "").strip()
        if value:
            cleaned[key] = value[:200]
    rules = ContactFilter.from_data(data)
    if rules.attr or rules.segment_id:
        # Checked as the contacts page checks them (the segment compiler, by field).
        contact_filter_check(workspace=workspace, contact_filter=rules)
        cleaned.update({k: v for k, v in rules.to_data().items() if k.startswith("attr") or k == "segment_id"})
    return cleaned


# --- create and run -------------------------------------------------------------------------


@transaction.atomic
def export_create(*, workspace: Workspace, user: User | None, filter: dict[str, Any]) -> ExportJob:
    """Queue an export of the contacts matching `filter` (see _clean_filter). Raises
    ValidationError by field, Http404 for another workspace's list."""
    cleaned = _clean_filter(workspace, filter)
    job = ExportJob.objects.create(
        workspace=workspace,
        created_by=user,
        filter=cleaned,
        status=JobStatus.QUEUED,
        heartbeat_at=timezone.now(),
        file_path=f"exports/{workspace.pk}/{uuid.uuid4().hex}.csv",
    )
    from audiences.tasks import run_export

    enqueue_after_commit(run_export, job.pk)
    return job


def exports_resume_stalled() -> int:
    """Queue again the exports whose worker died or whose task was lost (see job_claim)."""
    from audiences.tasks import run_export

    ids = jobs_stalled_requeue(ExportJob)
    for job_id in ids:
        enqueue_after_commit(run_export, job_id)
    return len(ids)


class _LostClaim(Exception):
    pass


def export_run(job_id: int) -> ExportJob | None:
    """Run (or resume) the export; what task `audiences.run_export` calls. Returns the job as
    it ended, or None when there was nothing for this worker to do."""
    job = job_claim(ExportJob, job_id)
    if job is None:
        return None
    try:
        with job_heartbeat(ExportJob, job):
            _export_rows(job)
    except _LostClaim:
        logger.warning("export %s was taken over by another worker", job_id)
        return None
    except (OperationalError, InterfaceError):
        raise  # left running; exports_resume_stalled queues it again once its heartbeat is stale
    except Exception:
        logger.exception("export %s failed", job_id)
        ExportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
            status=JobStatus.FAILED,
            error_message=_("The export stopped on an unexpected error."),
            finished_at=timezone.now(),
        )
    return ExportJob.objects.get(pk=job_id)


def _columns(workspace: Workspace) -> tuple[list[str], list[str]]:
    """File columns and the custom field keys behind the trailing ones. A key that clashes with
    a standard column is written as attributes.<key> (which the import maps back)."""
    keys = list(CustomField.objects.in_workspace(workspace).order_by("key").values_list("key", flat=True))
    names = [f"attributes.{key}" if key in STANDARD_COLUMNS else key for key in keys]
    return [*STANDARD_COLUMNS, *names], keys


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _update(job: ExportJob, **values: Any) -> None:
    if not ExportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(heartbeat_at=timezone.now(), **values):
        raise _LostClaim


def _export_rows(job: ExportJob) -> None:
    if not job.columns:
        columns, keys = _columns(job.workspace)
        job.columns = columns
        job.total_rows = export_contacts(workspace=job.workspace, contact_filter=job.filter).count()
        _update(job, columns=columns, total_rows=job.total_rows)
    else:
        keys = [name.removeprefix("attributes.") for name in job.columns[len(STANDARD_COLUMNS) :]]
    contacts = export_contacts(workspace=job.workspace, contact_filter=job.filter).order_by("pk")
    fields = ("pk", *STANDARD_COLUMNS[:-1], "tags", "attributes")
    path = media_path(job.file_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if job.file_size and not path.exists():  # the partial file is gone: start over
        job.file_size = job.last_contact_id = job.processed_rows = 0
        _update(job, file_size=0, last_contact_id=0, processed_rows=0)
    fresh = job.file_size == 0
    raw: IO[bytes] = path.open("w+b" if fresh else "r+b")
    raw.truncate(job.file_size)  # what a dead worker wrote after its last commit
    raw.seek(job.file_size)
    with io.TextIOWrapper(raw, encoding="utf-8-sig" if fresh else "utf-8", newline="") as text:
        writer = csv.writer(text)
        if fresh:
            writer.writerow(job.columns)
        last_id = job.last_contact_id
        while True:
            # Keyset pagination: each batch is an index range scan from the last id.
            rows = list(contacts.filter(pk__gt=last_id).values_list(*fields)[:EXPORT_BATCH])
            if not rows:
                break
            writer.writerows(
                [safe_cell(_text(value)) for value in row[1:-1]] + [safe_cell(_text(row[-1].get(key))) for key in keys]
                for row in rows
            )
            text.flush()
            os.fsync(raw.fileno())
            last_id = rows[-1][0]
            _update(job, last_contact_id=last_id, processed_rows=F("processed_rows") + len(rows), file_size=raw.tell())
    _update(job, status=JobStatus.DONE, total_rows=F("processed_rows"), finished_at=timezone.now())
