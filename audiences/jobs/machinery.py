"""The machinery shared by imports, exports and bulk actions: claiming a job for one worker, handing stalled
jobs to another, and the files a job reads and writes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audiences.models import HEARTBEAT_EVERY, QUEUED_STALE_AFTER, STALE_AFTER, BulkJob, ExportJob, ImportJob, JobStatus
from audiences.models.jobs import _Job

logger = logging.getLogger(__name__)

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
            .filter(
                Q(status=JobStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
                | Q(status=JobStatus.QUEUED, heartbeat_at__lt=now - QUEUED_STALE_AFTER)
            )
            .values_list("pk", flat=True)
        )
        model.objects.filter(pk__in=ids).update(status=JobStatus.QUEUED, heartbeat_at=now)
    return ids


@contextmanager
def job_heartbeat(model: type[_Job], job: _Job, every: float = HEARTBEAT_EVERY) -> Iterator[None]:
    """Keeps the claimed job's heartbeat fresh while the block runs, from a thread with its
    own database connection: a batch may take longer than STALE_AFTER (a slow disk, a big
    segment refresh), but a worker that is alive always beats. The write names this claim's
    `attempts`, so a worker presumed dead cannot refresh a job another one took over."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                model.objects.filter(pk=job.pk, attempts=job.attempts, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:  # the job's own writes report database trouble; this thread just stops
            logger.warning("heartbeat of %s %s stopped", model.__name__, job.pk, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{model.__name__}-{job.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)
