"""The audience as a marketer uses it in Chromium: import a CSV through the wizard, find the
contacts, edit one; and a visitor subscribing on the public page with double opt-in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact, Subscription
from audiences.services import list_save
from esp.models import OutboxMessage, Role
from tests.browser.test_flows import log_in
from tests.factories import WorkspaceFactory, member

pytestmark = pytest.mark.browser


@pytest.fixture
def eager_tasks():
    """The live server has no Celery worker of its own: run the enqueued tasks inline."""
    from esp.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_marketer_imports_finds_and_edits_contacts(page: Page, tmp_path, settings, eager_tasks) -> None:
    settings.MEDIA_ROOT = tmp_path
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    list_save(workspace=workspace, data={"name": "Newsletter", "double_opt_in": True})
    user = member(workspace, Role.MARKETER, email="marketer@acme.test")
    csv_file = tmp_path / "customers.csv"
    csv_file.write_bytes("Email;Имя;Город\nivan@example.bg;Иван;София\nbad-row;Пётр;Варна\n".encode("cp1251"))

    log_in(page, user.email)
    page.goto("/audience/imports/")
    page.locator("#import-file").set_input_files(str(csv_file))
    page.locator("form[enctype] button[type=submit]").click()
    expect(page.locator("#map-0")).to_have_value("email")
    page.locator("#import-list").select_option(label="Newsletter")
    page.locator("input[name=consent_text]").fill("Ticked the box at checkout")
    page.locator("main form button[type=submit]").click()
    expect(page.locator("#import-progress")).to_contain_text("Done")
    expect(page.locator("#import-progress a[href$='errors.csv']")).to_be_visible()
    assert Subscription.objects.get().status == "subscribed"  # the marketer vouched for consent

    page.goto("/audience/contacts/?q=ivan")
    page.locator("table a", has_text="ivan@example.bg").click()
    page.locator("input[name=last_name]").fill("Петров")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_be_visible()
    assert Contact.objects.get(email="ivan@example.bg").last_name == "Петров"


def test_visitor_subscribes_and_confirms(page: Page, eager_tasks, settings, live_server) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    news = list_save(workspace=workspace, data={"name": "Deals", "is_public": True, "double_opt_in": True})

    page.goto(f"/subscribe/acme/{news.pk}/")
    page.locator("input[name=email]").fill("visitor@example.com")
    page.locator("input[name=consent]").check()
    page.locator("button[type=submit]").click()
    expect(page.locator("main")).to_contain_text("Check your inbox")

    mail = OutboxMessage.objects.get(workspace=workspace)
    link = re.search(r"https?://\S+", mail.text_body).group(0)
    page.goto(link)
    assert Subscription.objects.get().status == "pending"  # opening the link changes nothing
    page.locator("button[type=submit]").click()
    expect(page.locator("main")).to_contain_text("Subscription confirmed")
    assert Subscription.objects.get().status == "subscribed"
