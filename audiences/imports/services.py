"""Writes of imports: the upload (step 1) and the start (step 3) of a job, and the requeue of
stalled ones."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.contacts import custom_fields_of
from audiences.imports.formats import _detect_encoding, _read_format
from audiences.imports.mapping import _check_mapping
from audiences.jobs.machinery import jobs_stalled_requeue, media_path
from audiences.models import ConsentSource, ImportJob, ImportMode, JobStatus, MailingList
from esp.models import User, Workspace
from esp.queue import enqueue_after_commit


def import_create(*, workspace: Workspace, user: User | None, uploaded_file: File[Any]) -> ImportJob:
    """Store the upload under MEDIA_ROOT/imports/<workspace>/ (streamed in chunks, never read
    whole), detect its encoding and delimiter, read its header. Raises ValidationError
    ({"file": ...}) for a file that is not a readable CSV."""
    relative = f"imports/{workspace.pk}/{uuid.uuid4().hex}.csv"
    path = media_path(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = int(getattr(settings, "IMPORT_MAX_BYTES", 1024**3))
    try:
        size = 0
        with path.open("wb") as out:
            for chunk in uploaded_file.chunks():
                size += len(chunk)
                if size > limit:
                    raise ValidationError({"file": _("The file is larger than %(n)d MB.") % {"n": limit // 1024**2}})
                out.write(chunk)
        encoding = _detect_encoding(path)
        delimiter, header, estimate = _read_format(path, encoding, size)
        return ImportJob.objects.create(
            workspace=workspace,
            created_by=user,
            file_path=relative,
            original_filename=Path(uploaded_file.name or "contacts.csv").name[:255],
            file_size=size,
            encoding=encoding,
            delimiter=delimiter,
            header=header,
            total_rows=estimate,
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@transaction.atomic
def import_start(
    *,
    workspace: Workspace,
    job_id: int,
    mapping: dict[str, Any],
    list_id: int | None = None,
    mode: str = ImportMode.UPDATE_EXISTING,
    consent_source: str = ConsentSource.IMPORT,
    consent_text: str = "",
) -> ImportJob:
    """Save the mapping and options and queue the job. `mapping` is {column: field} with the
    fields of `import_targets` (unmapped or "" columns are ignored); one column must be the
    email. With `list_id` every imported contact is subscribed to that list (never one who
    unsubscribed from it) and consent is recorded with `consent_source` and `consent_text`,
    which is then required. Raises ValidationError by field, Http404 for another workspace's
    job or list."""
    job = get_object_or_404(ImportJob.objects.in_workspace(workspace).select_for_update(), pk=job_id)
    if job.status != JobStatus.UPLOADED:
        raise ValidationError(_("This import has already been started."))
    errors: dict[str, str] = {}
    if mode not in ImportMode.values:
        errors["mode"] = _("Unknown mode.")
    if consent_source not in ConsentSource.values:
        errors["consent_source"] = _("Unknown consent source.")
    mailing_list = None
    if list_id:
        mailing_list = get_object_or_404(MailingList.objects.in_workspace(workspace), pk=list_id)
        if not consent_text.strip():
            errors["consent_text"] = _("Describe how these people agreed to receive this list's emails.")
    try:
        job.mapping = _check_mapping(job, mapping, custom_fields_of(workspace))
    except ValidationError as error:
        errors.update({key: " ".join(messages) for key, messages in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    job.mailing_list = mailing_list
    job.mode = mode
    job.consent_source = consent_source
    job.consent_text = consent_text.strip()
    job.status = JobStatus.QUEUED
    job.queued_at = job.heartbeat_at = now
    job.save()
    from audiences.tasks import run_import

    enqueue_after_commit(run_import, job.pk)
    return job


def imports_resume_stalled() -> int:
    """Queue again the imports whose worker died or whose task was lost (see job_claim)."""
    from audiences.tasks import run_import

    ids = jobs_stalled_requeue(ImportJob)
    for job_id in ids:
        enqueue_after_commit(run_import, job_id)
    return len(ids)
