"""CSV export: filters (list and status, tag, search), keyset batches, CSV-injection escaping,
resuming, and isolation. Tasks run inline by calling export_run."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.http import Http404

from audiences import exports
from audiences.exports import export_create, export_file, export_get, export_run
from audiences.imports import import_create, import_preview, import_run, import_start
from audiences.models import (
    Contact,
    CustomField,
    ExportJob,
    FieldType,
    JobStatus,
    MailingList,
    Subscription,
    SubscriptionStatus,
)
from esp.models import User, Workspace


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path


def contact(workspace: Workspace, email: str, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, email=email, **fields)


def export(
    workspace: Workspace, contact_filter: dict[str, Any] | None = None
) -> tuple[ExportJob, list[dict[str, str]]]:
    job = export_create(workspace=workspace, user=None, filter=contact_filter or {})
    done = export_run(job.pk)
    assert done is not None and done.status == JobStatus.DONE
    with export_file(done).path.open(encoding="utf-8-sig", newline="") as stream:
        return done, list(csv.DictReader(stream))


@pytest.mark.django_db
def test_columns_values_and_formula_escaping(acme: Workspace, acme_owner: User) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    CustomField.objects.create(workspace=acme, key="vip", label="VIP", type=FieldType.BOOLEAN)
    CustomField.objects.create(workspace=acme, key="city", label="City (custom)")  # clashes with a standard column
    contact(
        acme,
        "eve@example.com",
        first_name='=HYPERLINK("http://evil.example","click")',
        last_name="+1",
        city="-2",
        phone="@x",
        locale="\tcmd",
        tags=["=a", "b"],
        birth_date=dt.date(1990, 2, 1),
        attributes={"orders": -3, "vip": True, "city": "=1+1"},
    )
    contact(acme, "plain@example.com", first_name="Ann", last_name="O'Neil", attributes={"orders": 2})
    job = export_create(workspace=acme, user=acme_owner, filter={})
    assert job.status == JobStatus.QUEUED and job.created_by == acme_owner
    with pytest.raises(Http404):
        export_file(job)  # not done yet
    job, rows = export(acme)
    header = list(rows[0])
    assert header == [
        "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city", "country",
        "time_zone", "locale", "tags", "attributes.city", "orders", "vip",
    ]  # fmt: skip
    eve, plain = rows
    assert eve["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert (eve["last_name"], eve["city"], eve["phone"], eve["locale"]) == ("'+1", "'-2", "'@x", "'\tcmd")
    assert (eve["tags"], eve["birth_date"], eve["orders"], eve["vip"]) == ("'=a, b", "1990-02-01", "'-3", "true")
    assert eve["attributes.city"] == "'=1+1"
    assert (plain["first_name"], plain["last_name"], plain["orders"], plain["vip"]) == ("Ann", "O'Neil", "2", "")
    assert (job.total_rows, job.processed_rows, job.percent) == (2, 2, 100)
    assert job.file_path.startswith(f"exports/{acme.pk}/")
    assert export_file(job).filename.startswith("contacts-") and export_file(job).content_type == "text/csv"


@pytest.mark.django_db
def test_filters_list_status_tag_search(acme: Workspace) -> None:
    news = MailingList.objects.create(workspace=acme, name="News")
    ann = contact(acme, "ann@example.com", first_name="Ann", tags=["vip"])
    bob = contact(acme, "bob@shop.example", first_name="Bob", last_name="Annenberg")
    contact(acme, "cat@example.com", first_name="Cat", tags=["vip", "b2b"])
    for person, status in ((ann, SubscriptionStatus.SUBSCRIBED), (bob, SubscriptionStatus.UNSUBSCRIBED)):
        Subscription.objects.create(workspace=acme, contact=person, mailing_list=news, status=status)

    def emails(contact_filter: dict[str, Any]) -> set[str]:
        return {row["email"] for row in export(acme, contact_filter)[1]}

    assert emails({"list_id": news.pk}) == {"ann@example.com", "bob@shop.example"}
    assert emails({"list_id": str(news.pk), "status": "subscribed"}) == {"ann@example.com"}
    assert emails({"tag": "vip"}) == {"ann@example.com", "cat@example.com"}
    assert emails({"q": "ANN"}) == {"ann@example.com", "bob@shop.example"}  # email or names contain it
    assert emails({"q": "shop.example"}) == {"bob@shop.example"}
    assert emails({"tag": "vip", "q": "cat"}) == {"cat@example.com"}
    assert emails({}) == {"ann@example.com", "bob@shop.example", "cat@example.com"}
    with pytest.raises(ValidationError):
        export_create(workspace=acme, user=None, filter={"status": "subscribed"})
    with pytest.raises(ValidationError):
        export_create(workspace=acme, user=None, filter={"list_id": news.pk, "status": "nope"})


@pytest.mark.django_db
def test_keyset_batches_and_resume_after_a_crash(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "EXPORT_BATCH", 3)
    for i in range(10):
        contact(acme, f"p{i}@example.com", first_name=f"P{i}")
    job = export_create(workspace=acme, user=None, filter={})
    original = exports._update
    calls = {"n": 0}

    def crash_after_two_batches(job: ExportJob, **values: Any) -> None:
        if "last_contact_id" in values:
            calls["n"] += 1
            if calls["n"] == 3:  # the third batch is written to the file but not committed
                raise OperationalError("gone")
        original(job, **values)

    monkeypatch.setattr(exports, "_update", crash_after_two_batches)
    with pytest.raises(OperationalError):
        export_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.total_rows) == (JobStatus.RUNNING, 6, 10)
    monkeypatch.setattr(exports, "_update", original)
    ExportJob.objects.filter(pk=job.pk).update(heartbeat_at=job.heartbeat_at - dt.timedelta(hours=1))
    done = export_run(job.pk)
    assert done is not None and (done.status, done.processed_rows, done.attempts) == (JobStatus.DONE, 10, 2)
    with export_file(done).path.open(encoding="utf-8-sig", newline="") as stream:
        emails = [row["email"] for row in csv.DictReader(stream)]
    assert emails == [f"p{i}@example.com" for i in range(10)]  # each once, in id order


@pytest.mark.django_db
def test_isolation(acme: Workspace, globex: Workspace) -> None:
    contact(acme, "same@example.com", first_name="Acme")
    contact(globex, "same@example.com", first_name="Globex")
    contact(globex, "only@globex.example")
    globex_list = MailingList.objects.create(workspace=globex, name="G")
    job, rows = export(acme)
    assert [(row["email"], row["first_name"]) for row in rows] == [("same@example.com", "Acme")]
    globex_job = export_create(workspace=globex, user=None, filter={})
    with pytest.raises(Http404):
        export_get(workspace=acme, job_id=globex_job.pk)
    with pytest.raises(Http404):
        export_create(workspace=acme, user=None, filter={"list_id": globex_list.pk})
    assert export_get(workspace=acme, job_id=job.pk) == job


@pytest.mark.django_db
def test_an_export_imports_back(acme: Workspace, globex: Workspace) -> None:
    for workspace in (acme, globex):
        CustomField.objects.create(workspace=workspace, key="orders", label="Orders", type=FieldType.NUMBER)
    contact(acme, "ivan@example.com", first_name="Иван", country="BG", tags=["vip", "b2b"], attributes={"orders": 4})
    job, _rows = export(acme)
    with export_file(job).path.open("rb") as stream:
        imported = import_create(workspace=globex, user=None, uploaded_file=SimpleUploadedFile("e.csv", stream.read()))
    mapping = import_preview(imported).mapping
    assert mapping["orders"] == "attributes.orders" and mapping["tags"] == "tags"
    import_start(workspace=globex, job_id=imported.pk, mapping=mapping)
    assert import_run(imported.pk) is not None
    ivan = Contact.objects.get(workspace=globex)
    assert (ivan.first_name, ivan.country, ivan.tags, ivan.attributes) == ("Иван", "BG", ["b2b", "vip"], {"orders": 4})
