"""The import wizard and exports as a marketer uses them in the browser."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audiences.models import Contact, Subscription
from audiences.services import list_save
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import member

CSV = "E-mail;Имя;Город\nivan@example.bg;Иван;София\nnot-an-address;Пётр;Москва\nmaria@example.bg;Мария;Варна\n"


@pytest.fixture
def marketer(acme: Workspace) -> Client:
    return logged_in(member(acme, Role.MARKETER))


@pytest.mark.django_db
def test_import_wizard_end_to_end(
    acme: Workspace, marketer: Client, run_tasks_now: None, django_capture_on_commit_callbacks
) -> None:
    news = list_save(workspace=acme, data={"name": "News"})
    upload = SimpleUploadedFile("shop.csv", CSV.encode("cp1251"), content_type="text/csv")
    response = marketer.post("/audience/imports/", {"file": upload})
    assert response.status_code == 302
    mapping_page = marketer.get(response.url).content.decode()
    assert "Иван" in mapping_page and 'value="email" selected' in mapping_page  # suggested from "E-mail"
    form = {"map-0": "email", "map-1": "first_name", "map-2": "city", "list": news.pk, "mode": "update_existing"}
    refused = marketer.post(response.url, form)  # a list needs the consent text
    assert refused.status_code == 400 and "agreed" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        started = marketer.post(response.url, {**form, "consent_text": "Ticked the box at checkout"})
    assert started.status_code == 302
    progress = marketer.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in progress  # done: polling stops
    assert Contact.objects.get(email="ivan@example.bg").city == "София"
    assert Subscription.objects.filter(mailing_list=news).count() == 2
    report = marketer.get(f"{response.url}errors.csv")
    assert report.status_code == 200, report.content[:300]
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert any("not-an-address" in row for row in rows)


@pytest.mark.django_db
def test_export_from_the_contacts_filter(
    acme: Workspace, marketer: Client, run_tasks_now: None, django_capture_on_commit_callbacks
) -> None:
    from audiences.services import contact_save

    contact_save(workspace=acme, data={"email": "vip@example.com", "first_name": "=HYPERLINK(1)", "tags": ["vip"]})
    contact_save(workspace=acme, data={"email": "other@example.com"})
    assert 'name="tag" value="vip"' in marketer.get("/audience/exports/?tag=vip").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        marketer.post("/audience/exports/", {"tag": "vip"})
    page = marketer.get("/audience/exports/").content.decode()
    link = re.search(r'href="(/audience/exports/\d+/download/)"', page).group(1)
    body = b"".join(marketer.get(link).streaming_content).decode("utf-8-sig")
    assert "vip@example.com" in body and "other@example.com" not in body and "'=HYPERLINK(1)" in body


@pytest.mark.django_db
def test_viewer_cannot_import(acme: Workspace) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    upload = SimpleUploadedFile("x.csv", b"email\na@example.com\n")
    assert viewer.post("/audience/imports/", {"file": upload}).status_code == 403
    assert viewer.get("/audience/imports/").status_code == 200
