"""The contacts page of a big audience in Chromium: a marketer filters by country and by a
segment, tags all matching as a job whose progress the page follows, finds people by a piece of
their name; and deleting all matching asks first, saying what goes with the contacts.

The live server has no Celery worker: the job is queued by the request (which answers at
once) and run here, in a thread of its own, the way a worker would pick it up."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from audiences import bulk
from audiences.models import BulkJob, Contact, Event
from audiences.segments.services import segment_save
from audiences.services import contact_save
from campaigns.models import Message
from esp.models import Role
from tests.browser.test_flows import log_in
from tests.factories import EventFactory, MessageFactory, WorkspaceFactory, member

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("ESP_SCREENSHOTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"contacts-bulk-{name}.png"), full_page=True)


def run_job_slowly(job_id: int, monkeypatch: pytest.MonkeyPatch) -> threading.Thread:
    """The worker: batches of two contacts, each taking a moment, so the page sees it run."""
    monkeypatch.setattr(bulk, "BULK_BATCH", 2)
    apply = bulk._apply

    def slow_apply(*args: Any) -> int:
        time.sleep(0.7)
        return apply(*args)

    monkeypatch.setattr(bulk, "_apply", slow_apply)

    def work() -> None:
        try:
            bulk.bulk_job_run(job_id)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def add(workspace: Any, email: str, **fields: Any) -> Contact:
    contact, _created = contact_save(workspace=workspace, data={"email": email, **fields})
    return contact


def test_marketer_filters_by_country_and_segment_tags_all_as_a_job_and_searches_a_name(
    page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = WorkspaceFactory(name="Acme", slug="acme")
    globex = WorkspaceFactory(name="Globex", slug="globex")
    user = member(acme, Role.MARKETER, email="marketer@acme.test")
    buyers = []
    for n in range(10):
        german = add(acme, f"de{n}@shop.example", country="DE", first_name="Анна", last_name=f"Петрова{n}")
        if n % 2 == 0:
            EventFactory(contact=german, workspace=acme, name="Order Completed")
            buyers.append(german.pk)
    for n in range(6):
        french = add(acme, f"fr{n}@shop.example", country="FR", first_name="Marie")
        EventFactory(contact=french, workspace=acme, name="Order Completed")
    stranger = add(globex, "de0@shop.example", country="DE", first_name="Анна", last_name="Петрова0")
    EventFactory(contact=stranger, workspace=globex, name="Order Completed")
    segment_save(
        workspace=acme,
        name="Buyers",
        rules={"conditions": [{"kind": "event", "name": "Order Completed", "count": 1, "period": "ever"}]},
    )

    log_in(page, user.email)
    page.goto("/audience/contacts/")
    page.locator("select[name=attr]").select_option("country")
    page.locator("select[name=attr_op]").select_option("eq")
    page.locator("input[name=attr_value]").fill("de")
    page.locator("select[name=segment]").select_option(label="Buyers")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("input[name=ids]")).to_have_count(5)
    expect(page.locator("table")).not_to_contain_text("fr0@shop.example")
    shot(page, "1-filtered")

    page.locator("#bulk-action").select_option("tag")
    page.locator("#bulk-value").fill("promo")
    page.locator("select[name=target]").select_option("all")
    started = time.perf_counter()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#bulk-progress")).to_contain_text("Queued")
    assert time.perf_counter() - started < 5  # the request only queued the job
    job = BulkJob.objects.get()
    assert job.filter == {
        "attr": "country",
        "attr_op": "eq",
        "attr_value": "de",
        "segment_id": job.filter["segment_id"],
    }

    worker = run_job_slowly(job.pk, monkeypatch)
    expect(page.locator("#bulk-progress")).to_contain_text("Running")
    shot(page, "2-running")
    expect(page.locator("#bulk-progress")).to_contain_text("Done", timeout=20_000)
    expect(page.locator("#bulk-progress")).to_contain_text("5 of 5 contacts")
    expect(page.locator("#bulk-changed")).to_have_text("5")
    shot(page, "3-done")
    worker.join()
    assert set(Contact.objects.filter(tags__contains=["promo"]).values_list("pk", flat=True)) == set(buyers)
    stranger.refresh_from_db()
    assert stranger.tags == []

    page.get_by_role("link", name="Back to the contacts").click()
    page.locator("input[name=q]").fill("етрова3")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("input[name=ids]")).to_have_count(1)
    expect(page.locator("table")).to_contain_text("de3@shop.example")
    expect(page.locator("table")).to_contain_text("Анна Петрова3")
    shot(page, "4-search")


def test_delete_all_matching_asks_first_and_reports_deletions(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    acme = WorkspaceFactory(name="Acme", slug="acme")
    user = member(acme, Role.MARKETER, email="marketer@acme.test")
    leaving = [add(acme, f"old{n}@shop.example", tags=["inactive"]) for n in range(3)]
    staying = add(acme, "keep@shop.example")
    for contact in leaving:
        EventFactory(contact=contact, workspace=acme)
        EventFactory(contact=contact, workspace=acme, name="Order Completed")
    sent = MessageFactory(contact=leaving[0], workspace=acme)

    log_in(page, user.email)
    page.goto("/audience/contacts/?tag=inactive")
    expect(page.locator("input[name=ids]")).to_have_count(3)
    page.locator("#bulk-action").select_option("delete")
    page.locator("select[name=target]").select_option("all")
    page.get_by_role("button", name="Apply").click()

    confirmation = page.locator("#delete-confirmation")
    expect(confirmation).to_contain_text("Delete 3 contacts?")
    expect(confirmation).to_contain_text("Events (page views, orders, …): 6")
    expect(confirmation).to_contain_text("Emails sent to them (kept in the send log, without the contact): 1")
    shot(page, "5-delete-confirmation")
    assert Contact.objects.filter(workspace=acme).count() == 4 and not BulkJob.objects.exists()

    page.get_by_role("button", name="Delete 3 contacts").click()
    expect(page.locator("#bulk-progress")).to_be_visible()
    job = BulkJob.objects.get()
    run_job_slowly(job.pk, monkeypatch).join()
    expect(page.locator("#bulk-progress")).to_contain_text("Done", timeout=20_000)
    expect(page.locator("#bulk-progress")).to_contain_text("3 of 3 contacts")
    expect(page.locator("#bulk-progress")).to_contain_text("deleted")
    shot(page, "6-deleted")
    assert list(Contact.objects.filter(workspace=acme)) == [staying]
    assert not Event.objects.filter(workspace=acme).exists()
    assert Message.objects.get(pk=sent.pk).contact_id is None
