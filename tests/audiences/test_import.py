"""CSV import: upload, format detection, mapping, the batched run with its error report,
resuming after a crash, consent and isolation. Tasks run inline by calling import_run."""

from __future__ import annotations

import csv
import datetime as dt
import multiprocessing
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import billiard
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.db.models import Q
from django.http import Http404

from audiences.imports import (
    import_create,
    import_error_report,
    import_get,
    import_preview,
    import_run,
    import_start,
    import_targets,
    imports_resume_stalled,
    parsing,
    readers,
    writer,
)
from audiences.models import (
    ConsentRecord,
    Contact,
    CustomField,
    FieldType,
    ImportJob,
    ImportMode,
    JobStatus,
    MailingList,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from audiences.services import contact_save, suppression_add
from esp.models import User, Workspace


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture(autouse=True)
def _no_reader_left() -> Any:
    yield
    assert not billiard.active_children(), "the import's reader process outlived the run"


@pytest.fixture(params=["process", "thread"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The batches are parsed in a forked process, or in a thread where no process can be forked."""
    if request.param == "thread":
        monkeypatch.setattr(readers, "_can_fork", lambda: False)
    return str(request.param)


def upload(workspace: Workspace, text: str, encoding: str = "utf-8", name: str = "contacts.csv") -> ImportJob:
    return import_create(workspace=workspace, user=None, uploaded_file=SimpleUploadedFile(name, text.encode(encoding)))


def run(job: ImportJob, mapping: dict[str, str] | None = None, **options: Any) -> ImportJob:
    if mapping is None:
        mapping = import_preview(job).mapping
    import_start(workspace=job.workspace, job_id=job.pk, mapping=mapping, **options)
    result = import_run(job.pk)
    assert result is not None
    return result


def report_rows(job: ImportJob) -> list[list[str]]:
    with import_error_report(job).path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


@pytest.mark.django_db
def test_good_and_bad_rows_counts_and_error_report(acme: Workspace, acme_owner: User, reader: str) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    suppression_add(workspace=acme, email="blocked@example.com", reason=SuppressionReason.HARD_BOUNCE)
    contact_save(workspace=acme, data={"email": "old@example.com", "first_name": "Old", "city": "Sofia"})
    text = (
        "email,first_name,orders\n"  # line 1
        "new@example.com,Ann,3\n"  # 2 created
        "OLD@example.com,Olga,\n"  # 3 updated (an empty cell changes nothing)
        "not-an-email,Bad,1\n"  # 4 bad address
        "typed@example.com,Tim,three\n"  # 5 bad number
        "Blocked@EXAMPLE.com,Bo,1\n"  # 6 suppressed (the list compares addresses case-insensitively)
        "dup@example.com,First,1\n"  # 7 duplicate: a later row has the same address
        "dup@example.com,Second,2\n"  # 8 created
        '"multi@example.com","Multi\nLine",4\n'  # 9-10 created; the row starts on line 9
        ",,\n"  # 11 blank: skipped
        ",Nameless,1\n"  # 12 no address
        "=cmd@example.com,=HYPERLINK(1),x\n"  # 13 bad number; its cells are neutralised in the report
    )
    job = import_create(workspace=acme, user=acme_owner, uploaded_file=SimpleUploadedFile("shop.csv", text.encode()))
    assert (job.status, job.created_by, job.original_filename) == (JobStatus.UPLOADED, acme_owner, "shop.csv")
    assert job.header == ["email", "first_name", "orders"] and job.total_rows == 10
    assert job.file_path.startswith(f"imports/{acme.pk}/") and job.file_path.endswith(".csv")

    preview = import_preview(job, rows=2)
    assert preview.header == ["email", "first_name", "orders"]
    assert preview.rows == [["new@example.com", "Ann", "3"], ["OLD@example.com", "Olga", ""]]
    assert preview.mapping == {"email": "email", "first_name": "first_name", "orders": "attributes.orders"}

    job = run(job)
    assert job.status == JobStatus.DONE and job.finished_at and job.started_at
    assert (job.created_count, job.updated_count, job.unchanged_count, job.rejected_count) == (3, 1, 0, 6)
    assert job.processed_rows == job.total_rows == 10  # the blank line is not a row

    old = Contact.objects.get(workspace=acme, email="old@example.com")
    assert (old.first_name, old.city, old.attributes) == ("Olga", "Sofia", {})
    assert Contact.objects.get(workspace=acme, email="dup@example.com").first_name == "Second"
    multi = Contact.objects.get(workspace=acme, email="multi@example.com")
    assert multi.first_name == "Multi\nLine" and multi.attributes == {"orders": 4} and multi.source == "import"
    assert not Contact.objects.filter(Q(email__iexact="blocked@example.com") | Q(email="typed@example.com")).exists()

    rows = report_rows(job)
    assert rows[0] == ["line", "email", "reason", "email", "first_name", "orders"]
    by_line = {row[0]: row for row in rows[1:]}
    assert list(by_line) == ["4", "5", "6", "7", "12", "13"]
    assert by_line["4"][1] == "not-an-email" and by_line["4"][2].startswith("email:")
    assert "attributes.orders" in by_line["5"][2] and by_line["5"][3:] == ["typed@example.com", "Tim", "three"]
    assert "suppression" in by_line["6"][2] and by_line["6"][1] == "Blocked@example.com"  # as normalised
    assert by_line["6"][3:] == ["Blocked@EXAMPLE.com", "Bo", "1"]
    assert "again later" in by_line["7"][2] and by_line["7"][3:] == ["dup@example.com", "First", "1"]
    assert by_line["7"][1] == "dup@example.com"
    assert "required" in by_line["12"][2]
    assert by_line["13"][1] == "'=cmd@example.com" and by_line["13"][4] == "'=HYPERLINK(1)"
    assert import_error_report(job).filename == "shop-errors.csv"


@pytest.mark.django_db
def test_cp1251_cyrillic_file(acme: Workspace) -> None:
    job = upload(acme, "email;имя;фамилия;город\nivan@example.com;Иван;Петров;Москва\n", encoding="cp1251")
    assert (job.encoding, job.delimiter) == ("cp1251", ";")
    assert job.header == ["email", "имя", "фамилия", "город"]
    assert import_preview(job).mapping == {
        "email": "email",
        "имя": "first_name",
        "фамилия": "last_name",
        "город": "city",
    }
    job = run(job)
    ivan = Contact.objects.get(workspace=acme)
    assert (ivan.first_name, ivan.last_name, ivan.city, job.created_count) == ("Иван", "Петров", "Москва", 1)


@pytest.mark.django_db
def test_utf8_with_bom_and_latin1_files(acme: Workspace) -> None:
    job = upload(acme, "\ufeffE-mail,Име\nmaria@example.com,Мария\n")
    assert job.encoding == "utf-8-sig" and job.header == ["E-mail", "Име"]
    assert import_preview(job).mapping == {"E-mail": "email", "Име": "first_name"}
    run(job)
    latin = upload(acme, "Email Address,City\nhans@example.com,Zürich\n", encoding="latin-1")
    assert latin.encoding == "latin-1"
    run(latin)
    cities = dict(Contact.objects.in_workspace(acme).values_list("email", "city"))
    first_names = dict(Contact.objects.in_workspace(acme).values_list("email", "first_name"))
    assert cities["hans@example.com"] == "Zürich" and first_names["maria@example.com"] == "Мария"


@pytest.mark.django_db
def test_utf16_tab_separated_file(acme: Workspace) -> None:
    # What Excel writes as "Unicode text".
    job = upload(acme, "Email\tИмя\r\nolga@example.com\tОльга\r\n", encoding="utf-16")
    assert (job.encoding, job.delimiter, job.header) == ("utf-16", "\t", ["Email", "Имя"])
    job = run(job)
    assert Contact.objects.get(workspace=acme).first_name == "Ольга" and job.created_count == 1


@pytest.mark.django_db
def test_semicolon_delimited_file_with_quoted_cells(acme: Workspace) -> None:
    text = 'E-mail;First Name;Tags;Phone\n"a@example.com";"Smith, John";"vip, b2b";+359 88 123\nb@example.com;Bo;;\n'
    job = upload(acme, text)
    assert job.delimiter == ";"
    assert import_preview(job).mapping == {
        "E-mail": "email",
        "First Name": "first_name",
        "Tags": "tags",
        "Phone": "phone",
    }
    job = run(job)
    a = Contact.objects.get(workspace=acme, email="a@example.com")
    assert (a.first_name, a.tags, a.phone, job.created_count) == ("Smith, John", ["b2b", "vip"], "+359 88 123", 2)


@pytest.mark.django_db
def test_one_column_file(acme: Workspace) -> None:
    job = run(upload(acme, "email\nx@example.com\ny@example.com\n"))
    assert job.delimiter == "," and job.created_count == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mode", "name", "counts"),
    [(ImportMode.UPDATE_EXISTING, "New", (1, 1, 0)), (ImportMode.SKIP_EXISTING, "Old", (1, 0, 1))],
)
def test_update_or_skip_existing(acme: Workspace, mode: str, name: str, counts: tuple[int, int, int]) -> None:
    contact_save(workspace=acme, data={"email": "old@example.com", "first_name": "Old"})
    job = run(upload(acme, "email,first_name\nold@example.com,New\nfresh@example.com,Fresh\n"), mode=mode)
    assert (job.created_count, job.updated_count, job.unchanged_count) == counts
    assert Contact.objects.get(workspace=acme, email="old@example.com").first_name == name


@pytest.mark.django_db
def test_list_subscription_with_consent_never_undoes_an_unsubscribe(acme: Workspace) -> None:
    news = MailingList.objects.create(workspace=acme, name="News")
    gone, _ = contact_save(workspace=acme, data={"email": "gone@example.com"})
    Subscription.objects.create(workspace=acme, contact=gone, mailing_list=news, status=SubscriptionStatus.UNSUBSCRIBED)
    job = upload(acme, "email\ngone@example.com\nfresh@example.com\nother@example.com\n")
    with pytest.raises(ValidationError) as error:
        import_start(workspace=acme, job_id=job.pk, mapping={"email": "email"}, list_id=news.pk)
    assert "consent_text" in error.value.message_dict
    job = run(job, list_id=news.pk, consent_source="import", consent_text="Customers who ticked the box at checkout")
    assert job.updated_count == 1 and job.created_count == 2
    statuses = dict(Subscription.objects.filter(mailing_list=news).values_list("contact__email", "status"))
    assert statuses == {
        "gone@example.com": SubscriptionStatus.UNSUBSCRIBED,
        "fresh@example.com": SubscriptionStatus.SUBSCRIBED,
        "other@example.com": SubscriptionStatus.SUBSCRIBED,
    }
    records = ConsentRecord.objects.filter(mailing_list=news)
    assert sorted(r.contact.email for r in records) == ["fresh@example.com", "other@example.com"]
    assert {(r.source, r.text_shown, r.action) for r in records} == {
        ("import", "Customers who ticked the box at checkout", "subscribed")
    }
    # Importing the same people again changes no subscription and records no new consent.
    run(upload(acme, "email\ngone@example.com\nfresh@example.com\n"), list_id=news.pk, consent_text="Again")
    assert Subscription.objects.get(contact=gone).status == SubscriptionStatus.UNSUBSCRIBED
    assert ConsentRecord.objects.filter(mailing_list=news).count() == 2


@pytest.mark.django_db
def test_import_into_acme_never_touches_globex(acme: Workspace, globex: Workspace) -> None:
    contact_save(workspace=globex, data={"email": "same@example.com", "first_name": "Globex"})
    globex_list = MailingList.objects.create(workspace=globex, name="G")
    job = run(upload(acme, "email,first_name\nsame@example.com,Acme\n"))
    assert job.created_count == 1
    assert Contact.objects.get(workspace=globex).first_name == "Globex"
    assert Contact.objects.get(workspace=acme).first_name == "Acme"
    # Another workspace's job and list are not found.
    globex_job = upload(globex, "email\nx@example.com\n")
    with pytest.raises(Http404):
        import_get(workspace=acme, job_id=globex_job.pk)
    with pytest.raises(Http404):
        import_start(workspace=acme, job_id=globex_job.pk, mapping={"email": "email"})
    acme_job = upload(acme, "email\nx@example.com\n")
    with pytest.raises(Http404):
        import_start(workspace=acme, job_id=acme_job.pk, mapping={"email": "email"}, list_id=globex_list.pk)
    assert import_get(workspace=globex, job_id=globex_job.pk) == globex_job
    assert globex_job.file_path.startswith(f"imports/{globex.pk}/")


@pytest.mark.django_db
def test_mapping_is_checked(acme: Workspace) -> None:
    CustomField.objects.create(workspace=acme, key="plan", label="Plan")
    job = upload(acme, "mail,name,plan\na@example.com,A,gold\n")
    assert ("attributes.plan", "Plan") in import_targets(workspace=acme)
    for mapping, expected in [
        ({"name": "first_name"}, "email address"),
        ({"mail": "email", "name": "email"}, "Two columns"),
        ({"mail": "email", "nope": "city"}, "no column"),
        ({"mail": "email", "name": "attributes.unknown"}, "Unknown field"),
    ]:
        with pytest.raises(ValidationError) as error:
            import_start(workspace=acme, job_id=job.pk, mapping=mapping)
        assert expected in str(error.value.message_dict["mapping"])
    job = run(job, mapping={"mail": "email", "name": "ignore", "plan": "attributes.plan"})
    contact = Contact.objects.get(workspace=acme)
    assert (contact.first_name, contact.attributes) == ("", {"plan": "gold"})
    assert job.mapping == {"mail": "email", "plan": "attributes.plan"}
    with pytest.raises(ValidationError):
        import_start(workspace=acme, job_id=job.pk, mapping={"mail": "email"})  # started already


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\n\n", "empty"), (b"PK\x03\x04\x00\x00binary", "not a text CSV")],
)
def test_unreadable_files_are_refused_and_not_kept(
    acme: Workspace, tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        import_create(workspace=acme, user=None, uploaded_file=SimpleUploadedFile("x.csv", content))
    assert message in str(error.value.message_dict["file"])
    assert not list((tmp_path / "imports").rglob("*.csv")) and not ImportJob.objects.exists()


@pytest.mark.django_db
def test_row_estimate_for_a_large_file(acme: Workspace) -> None:
    lines = [f"person{i}@example.com,Name{i}" for i in range(20_000)]
    job = upload(acme, "email,first_name\n" + "\n".join(lines) + "\n")
    assert 18_000 < job.total_rows < 22_000  # estimated from the first 64 KB
    job = run(job)
    assert job.total_rows == job.processed_rows == job.created_count == 20_000


def _crash_on(call: int, original: Callable[..., Any]) -> Callable[..., Any]:
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == call:
            raise OperationalError("server closed the connection unexpectedly")
        return result

    return wrapper


@pytest.mark.django_db
def test_resumes_after_a_crash_from_the_last_committed_batch(
    acme: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    run_tasks_now: None,
    django_capture_on_commit_callbacks: Any,
    reader: str,
) -> None:
    monkeypatch.setattr("audiences.imports.run.BATCH_ROWS", 2)
    rows = ["email,first_name"]
    for i in range(1, 9):
        rows.append(f"ok{i}@example.com,N{i}")
        rows.append(f"bad{i},B{i}")
    job = upload(acme, "\n".join(rows) + "\n")
    import_start(workspace=acme, job_id=job.pk, mapping={"email": "email", "first_name": "first_name"})
    # The worker dies in batch 3, after writing its errors to the report but before the commit.
    original_write = writer._ErrorReport.write
    monkeypatch.setattr(writer._ErrorReport, "write", _crash_on(3, original_write))
    with pytest.raises(OperationalError):
        import_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.resume_offset, job.created_count, job.rejected_count) == (JobStatus.RUNNING, 4, 2, 2)
    assert import_run(job.pk) is None  # a worker still seems to hold it: nobody else may take it
    monkeypatch.setattr(writer._ErrorReport, "write", original_write)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=job.heartbeat_at - dt.timedelta(hours=1))
    assert job.percent < 100 and ImportJob.objects.get(pk=job.pk).is_stalled

    with django_capture_on_commit_callbacks(execute=True):
        assert imports_resume_stalled() == 1  # beat's sweep: queued again, run here inline
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.attempts == 2 and job.percent == 100
    assert (job.created_count, job.rejected_count, job.processed_rows, job.total_rows) == (8, 8, 16, 16)
    assert Contact.objects.in_workspace(acme).count() == 8
    lines = [row[0] for row in report_rows(job)[1:]]
    assert lines == [str(n) for n in range(3, 18, 2)]  # each bad row once, in order


@pytest.mark.django_db
def test_a_failed_run_says_why(acme: Workspace, tmp_path: Path) -> None:
    job = upload(acme, "email\na@example.com\n")
    import_start(workspace=acme, job_id=job.pk, mapping={"email": "email"})
    (tmp_path / job.file_path).unlink()
    job = import_run(job.pk)
    assert job is not None and job.status == JobStatus.FAILED and "upload it again" in job.error_message
    assert import_run(job.pk) is None  # failed jobs are not picked up again
    with pytest.raises(Http404):
        import_error_report(job)


@pytest.mark.django_db
def test_a_file_that_is_not_its_encoding_fails_with_a_reason(acme: Workspace) -> None:
    job = upload(acme, "email,first_name\nivan@example.com,Иван\n", encoding="cp1251")
    ImportJob.objects.filter(pk=job.pk).update(encoding="utf-8")  # as if detected wrongly
    job = run(import_get(workspace=acme, job_id=job.pk), mapping={"email": "email", "first_name": "first_name"})
    assert job.status == JobStatus.FAILED and "not valid utf-8" in job.error_message
    assert not Contact.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_start_enqueues_the_task_after_commit(acme: Workspace, run_tasks_now: None) -> None:
    from audiences.tasks import run_export, run_import

    assert (run_import.name, run_export.name) == ("audiences.run_import", "audiences.run_export")
    job = upload(acme, "email\na@example.com\n")
    import_start(workspace=acme, job_id=job.pk, mapping={"email": "email"})  # commits: the task runs
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.created_count == 1


@pytest.mark.django_db
@pytest.mark.skipif(not readers._can_fork(), reason="the reader runs in a thread here")
def test_a_reader_process_that_dies_fails_the_job(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audiences.imports.run.BATCH_ROWS", 2)
    real_parse = parsing._parse_batch
    calls = {"n": 0}

    def parse_then_die(*args: Any) -> Any:
        calls["n"] += 1  # counted in the reader process, which the fork gave its own copy
        if calls["n"] == 2:
            os._exit(3)  # as if killed (out of memory, a signal): no error to hand over
        return real_parse(*args)

    monkeypatch.setattr(parsing, "_parse_batch", parse_then_die)
    job = run(upload(acme, "email\n" + "".join(f"p{i}@example.com\n" for i in range(6))))
    assert job.status == JobStatus.FAILED and "unexpected error" in job.error_message
    # What committed is counted, and only that (the batches before the lost one may have gone
    # down with it): never the lost batch or any after it.
    assert job.created_count == job.resume_offset == Contact.objects.in_workspace(acme).count() < 6


@pytest.mark.django_db
@pytest.mark.skipif(not readers._can_fork(), reason="the reader runs in a thread here")
def test_a_reader_process_that_dies_in_the_middle_of_a_batch_fails_the_job(
    acme: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def send_half_a_batch_and_die(channel: Any, parent: int, make: Any) -> None:
        # A message announces 1 MB and brings 3 bytes: the writer must see the end of the pipe
        # and stop, not wait for the rest forever.
        os.write(channel._writer.fileno(), struct.pack("!i", 1_000_000) + b"abc")
        os._exit(9)

    monkeypatch.setattr(readers, "_produce_in_child", send_half_a_batch_and_die)
    job = run(upload(acme, "email\na@example.com\n"))
    assert job.status == JobStatus.FAILED and "unexpected error" in job.error_message
    assert job.created_count == job.resume_offset == 0


@pytest.mark.django_db
def test_runs_in_a_daemon_process_like_a_celery_pool_worker(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    # A prefork pool process is a daemon; multiprocessing refuses to start children from one
    # (celery/celery#1709), billiard does not, and the import forks its reader with billiard.
    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)  # type: ignore[attr-defined]
    monkeypatch.setitem(billiard.current_process()._config, "daemon", True)
    with pytest.raises(AssertionError, match="daemonic"):
        multiprocessing.get_context("fork").Process(target=print).start()
    job = run(upload(acme, "email\nd1@example.com\nd2@example.com\n"))
    assert job.status == JobStatus.DONE and job.created_count == 2


@pytest.mark.django_db(transaction=True)
def test_imported_contacts_enter_the_workspace_segments(acme: Workspace, run_tasks_now: None) -> None:
    from audiences.models import SegmentMembership
    from audiences.segments.services import segment_save

    rules = {
        "match": "all",
        "negate": False,
        "conditions": [{"kind": "attribute", "field": "city", "operator": "eq", "value": "Plovdiv"}],
    }
    segment = segment_save(workspace=acme, name="Plovdiv", rules=rules)
    job = upload(acme, "email,city\nivan@example.bg,Plovdiv\nmaria@example.bg,Varna\n")
    import_start(workspace=acme, job_id=job.pk, mapping=import_preview(job).mapping)  # the task runs inline
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    members = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)
    assert [m.contact.email for m in members] == ["ivan@example.bg"]
