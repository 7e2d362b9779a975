"""A broker outage delays work but never fails the request or loses the row (DESIGN rule 4)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from kombu.exceptions import OperationalError

from audiences.models import ImportJob
from audiences.tasks import run_import
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import member


@pytest.mark.django_db
def test_starting_an_import_with_the_broker_down_keeps_the_job_queued(
    acme: Workspace, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("Error 111 connecting to redis. Connection refused.")

    monkeypatch.setattr(run_import, "apply_async", broker_down)
    client = logged_in(member(acme, Role.MARKETER))
    upload = SimpleUploadedFile("x.csv", b"email\na@example.com\n")
    job_url = client.post("/audience/imports/", {"file": upload}).url
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(job_url, {"map-0": "email", "mode": "update_existing"})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == "queued" and job.heartbeat_at is not None  # the sweeper will resume it


@pytest.mark.django_db
def test_nothing_is_sent_when_the_transaction_rolls_back(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import transaction

    from esp.queue import enqueue_after_commit

    sent: list[tuple[object, ...]] = []
    monkeypatch.setattr(run_import, "apply_async", lambda args: sent.append(args))
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_after_commit(run_import, 1)
        raise RuntimeError("rolled back")
    assert sent == []
