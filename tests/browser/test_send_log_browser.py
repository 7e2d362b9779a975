"""The send log's parts in Chromium: the segment builder's engagement row (its own renderer in
static/js/segment_builder.js) and the profile's "Messages" section loaded and paged by htmx."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact, Segment
from campaigns import views
from campaigns.models import Message
from esp.models import Role
from tests.browser.test_flows import log_in
from tests.factories import (
    EmailTemplateFactory,
    MessageEventFactory,
    MessageFactory,
    WorkspaceFactory,
    member,
)

pytestmark = pytest.mark.browser


def test_builder_edits_an_engagement_condition(page: Page) -> None:
    acme = WorkspaceFactory(name="Acme", slug="acme")
    user = member(acme, Role.MARKETER, email="marketer@acme.test")
    now = dt.datetime.now(tz=dt.UTC)
    welcome = EmailTemplateFactory(workspace=acme, name="Welcome")
    promo = EmailTemplateFactory(workspace=acme, name="Promo")
    anna, ben, _cara = (
        Contact.objects.create(workspace=acme, email=f"{n}@example.com") for n in ("anna", "ben", "cara")
    )
    MessageEventFactory(message=MessageFactory(contact=anna, template=welcome), occurred_at=now - dt.timedelta(days=3))
    old = MessageFactory(contact=ben, template=promo)
    for days in (50, 60):
        MessageEventFactory(message=old, occurred_at=now - dt.timedelta(days=days))

    log_in(page, user.email)
    page.goto("/audience/segments/new/")
    count = page.locator("#segment-live-count")
    expect(count).to_have_text("3")
    page.locator("input[name=name]").fill("Quiet ones")
    page.get_by_role("button", name="+ Condition").click()
    page.locator("select[data-path='conditions[0]']").select_option("engagement")
    expect(count).to_have_text("1")  # opened any email in the last 30 days: anna
    page.locator("select[data-path='conditions[0].action']").select_option("false|opened")
    expect(count).to_have_text("2")  # ben and cara
    page.locator("select[data-path='conditions[0].period']").select_option("ever")
    expect(count).to_have_text("1")  # cara never opened anything
    page.locator("select[data-path='conditions[0].action']").select_option("true|opened")
    page.locator("select[data-path='conditions[0].template_id']").select_option(label="Promo")
    page.locator("input[data-path='conditions[0].count']").fill("2")
    expect(count).to_have_text("1")  # ben, twice
    page.locator("input[data-path='conditions[0].count']").fill("3")
    expect(count).to_have_text("0")
    page.locator("input[data-path='conditions[0].count']").fill("2")
    expect(count).to_have_text("1")
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator("main")).to_contain_text("opened the email “Promo” at least 2 times ever")
    segment = Segment.objects.get(workspace=acme)
    assert segment.rules["conditions"] == [
        {"kind": "engagement", "did": True, "action": "opened", "template_id": promo.pk, "period": "ever", "count": 2}
    ]


def test_profile_messages_load_and_page(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "PROFILE_PAGE_SIZE", 2)
    acme = WorkspaceFactory(name="Acme", slug="acme")
    user = member(acme, Role.VIEWER, email="viewer@acme.test")
    cara = Contact.objects.create(workspace=acme, email="cara@example.com")
    t0 = dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)
    sent = [MessageFactory(contact=cara, subject=f"c{n}", created_at=t0 + dt.timedelta(hours=n)) for n in range(1, 4)]
    Message.objects.filter(pk=sent[0].pk).update(opened_at=t0)
    MessageEventFactory(message=sent[0], occurred_at=t0)

    log_in(page, user.email)
    page.goto(f"/audience/contacts/{cara.pk}/")
    section = page.locator("#messages")
    expect(section.locator("[data-stat=sent]")).to_have_text("3")
    expect(section.locator("[data-stat=opened]")).to_have_text("1")
    expect(section.locator("tbody tr")).to_have_count(3)  # c3, c2 and the button's row
    section.get_by_role("button", name="Older messages").click()
    expect(section.locator("tbody tr")).to_have_count(3)  # c3, c2, c1
    section.get_by_role("link", name="c1").click()
    expect(page.locator("h1")).to_have_text("c1")
