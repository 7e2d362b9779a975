"""A job's worker beats every few seconds while it runs, so a worker lost mid-job (kill -9, a
host gone) is noticed within about half a minute, not ten: the sweep queues the job again and
its page says it is resuming. A job waiting in the queue is not a lost one."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audiences.jobs.machinery import job_heartbeat, jobs_stalled_requeue
from audiences.models import ExportJob, ImportJob, JobStatus
from esp.models import Workspace
from tests.factories import WorkspaceFactory


def _job(workspace: Workspace, status: str, silent_for: dt.timedelta, attempts: int = 1) -> ImportJob:
    return ImportJob.objects.create(
        workspace=workspace,
        status=status,
        heartbeat_at=timezone.now() - silent_for,
        attempts=attempts,
        file_path="imports/x.csv",
        original_filename="customers.csv",
        total_rows=100,
        processed_rows=40,
    )


@pytest.mark.django_db
def test_a_worker_silent_for_half_a_minute_is_replaced_and_the_page_says_resuming(
    acme: Workspace, acme_client: Client
) -> None:
    lost = _job(acme, JobStatus.RUNNING, dt.timedelta(seconds=40))
    alive = _job(acme, JobStatus.RUNNING, dt.timedelta(seconds=8))
    waiting = _job(acme, JobStatus.QUEUED, dt.timedelta(seconds=40), attempts=0)

    page = acme_client.get(reverse("import", args=[lost.pk]))
    assert "Resuming" in page.content.decode()
    assert "Resuming" not in acme_client.get(reverse("import", args=[alive.pk])).content.decode()

    assert jobs_stalled_requeue(ImportJob) == [lost.pk]
    lost.refresh_from_db()
    assert lost.status == JobStatus.QUEUED and lost.is_resuming
    assert "Resuming" in acme_client.get(reverse("import", args=[lost.pk])).content.decode()
    waiting.refresh_from_db()
    assert waiting.status == JobStatus.QUEUED and not waiting.is_resuming


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_runs_while_the_job_does_and_only_for_its_own_claim() -> None:
    workspace = WorkspaceFactory(slug="beat")
    job = _job(workspace, JobStatus.RUNNING, dt.timedelta(hours=1))  # type: ignore[arg-type]
    before = job.heartbeat_at
    assert before is not None
    with job_heartbeat(ImportJob, job, every=0.05):
        time.sleep(0.4)
    job.refresh_from_db()
    assert job.heartbeat_at is not None and job.heartbeat_at > timezone.now() - dt.timedelta(seconds=5)

    ImportJob.objects.filter(pk=job.pk).update(attempts=2, heartbeat_at=before)  # taken over
    with job_heartbeat(ImportJob, job, every=0.05):
        time.sleep(0.3)
    assert ImportJob.objects.get(pk=job.pk).heartbeat_at == before
    assert not ExportJob.objects.exists()
    connection.close()
