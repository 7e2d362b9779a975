"""The import and export pages speak a person's words: the detected encoding by the name a
spreadsheet program gives it, an export's filter by list name, status and tag."""

from __future__ import annotations

import codecs

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audiences.exports import export_create
from audiences.imports import import_create
from audiences.segments.services import segment_save
from audiences.services import list_save
from esp.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "label", "codec"),
    [
        (codecs.BOM_UTF8 + b"email\nana@example.com\n", "UTF-8 (with byte order mark)", "utf-8-sig"),
        ("email,name\nivan@example.com,Иван\n".encode("cp1251"), "Windows-1251 (Cyrillic)", "cp1251"),
    ],
)
def test_import_page_names_the_encoding(
    acme: Workspace, acme_client: Client, raw: bytes, label: str, codec: str
) -> None:
    job = import_create(workspace=acme, user=None, uploaded_file=SimpleUploadedFile("people.csv", raw))
    assert job.encoding == codec
    page = acme_client.get(f"/audience/imports/{job.pk}/").content.decode()
    assert label in page
    assert f", {codec}," not in page


def test_export_rows_describe_the_filter_in_words(acme: Workspace, acme_client: Client) -> None:
    news = list_save(workspace=acme, data={"name": "Newsletter"})
    export_create(workspace=acme, user=None, filter={"list_id": news.pk, "status": "subscribed", "tag": "vip"})
    export_create(workspace=acme, user=None, filter={})
    page = acme_client.get("/audience/exports/").content.decode()
    assert "List: Newsletter · Status: Subscribed · Tag: vip" in page
    assert "All contacts" in page
    assert "list_id" not in page


def test_export_rows_name_the_field_and_segment_filters(acme: Workspace, acme_client: Client) -> None:
    buyers = segment_save(
        workspace=acme, name="Buyers", rules={"conditions": [{"kind": "tag", "operator": "in", "value": ["vip"]}]}
    )
    export_create(workspace=acme, user=None, filter={"attr": "country", "attr_op": "eq", "attr_value": "DE"})
    export_create(workspace=acme, user=None, filter={"segment_id": buyers.pk})
    page = acme_client.get("/audience/exports/").content.decode()
    assert "Segment: Buyers" in page
    assert "DE" in page and "attr" not in page
    assert "All contacts" not in page  # a filtered export never reads as everyone


def test_the_export_list_polls_while_an_older_export_runs(acme: Workspace, acme_client: Client) -> None:
    from audiences.models import ExportJob, JobStatus

    running = export_create(workspace=acme, user=None, filter={})
    done = export_create(workspace=acme, user=None, filter={})
    ExportJob.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING)
    ExportJob.objects.filter(pk=done.pk).update(status=JobStatus.DONE)
    page = acme_client.get("/audience/exports/").content.decode()
    assert page.count('hx-trigger="every 1s"') == 1
