"""The job run (the worker, step 4): what task `audiences.run_import` calls."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterator

from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.contacts import custom_fields_of
from audiences.imports.mapping import _Plan
from audiences.imports.parsing import _Parsed, _parsed_batches
from audiences.imports.readers import read_batches
from audiences.imports.writer import _ErrorReport, _LostClaim, _write_batch
from audiences.jobs.machinery import job_claim, job_heartbeat
from audiences.models import ImportJob, JobStatus, MailingList
from audiences.segments.services import segments_workspace_changed

logger = logging.getLogger(__name__)


# Rows per batch: one COPY + upsert + progress commit each. Large enough that the per-batch
# SQL is cheap per row, small enough that progress moves every second or so (bench/README.md).
BATCH_ROWS = 10_000


def import_run(job_id: int) -> ImportJob | None:
    """Run (or resume) the import; what task `audiences.run_import` calls. Returns the job as
    it ended, or None when there was nothing for this worker to do (another one has it, or
    it is finished)."""
    job = job_claim(ImportJob, job_id)
    if job is None:
        return None
    try:
        with job_heartbeat(ImportJob, job):
            _import_rows(job)
    except _LostClaim:
        logger.warning("import %s was taken over by another worker", job_id)
        return None
    except (OperationalError, InterfaceError):
        # The database went away: nothing more can be recorded now. The job stays running
        # until its heartbeat goes stale; then imports_resume_stalled queues it again and it
        # resumes from its last committed batch.
        raise
    except Exception as error:
        logger.exception("import %s failed", job_id)
        ImportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
            status=JobStatus.FAILED, error_message=_failure_message(error), finished_at=timezone.now()
        )
    return ImportJob.objects.get(pk=job_id)


def _failure_message(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return _("The file is not valid %(encoding)s text.") % {"encoding": error.encoding}
    if isinstance(error, csv.Error):
        return _("The file is not a valid CSV file: %(error)s") % {"error": error}
    if isinstance(error, FileNotFoundError):
        return _("The uploaded file is gone; upload it again.")
    return _("The import stopped on an unexpected error; the rows counted so far were imported.")


def _import_rows(job: ImportJob) -> None:
    fields = custom_fields_of(job.workspace)
    plan = _Plan.of(job)
    mailing_list = MailingList.objects.filter(pk=job.mailing_list_id).first() if job.mailing_list_id else None
    report = _ErrorReport(job)
    size = BATCH_ROWS

    def batches(part: int, parts: int) -> Callable[[], Iterator[_Parsed]]:
        return lambda: _parsed_batches(job, plan, fields, size, part, parts)

    parsed_batches = read_batches(batches)
    try:
        for parsed in parsed_batches:
            _write_batch(job, plan, parsed, mailing_list, report)
    finally:
        parsed_batches.close()  # stops the reader now, not when the generator is collected
        report.close()
    ImportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
        status=JobStatus.DONE, total_rows=F("processed_rows"), finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    # Too many contacts changed to name them: every segment of the workspace is refreshed once.
    segments_workspace_changed(workspace_id=job.workspace_id)
