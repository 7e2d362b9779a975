"""The segment builder in Chromium: conditions and groups are added in the browser, the live
count follows each edit (debounced), an invalid rule is shown and its input marked, and the
saved segment holds the rule tree that was built."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from audiences.models import Contact, Segment
from esp.models import Role
from tests.browser.test_flows import log_in
from tests.factories import EventFactory, WorkspaceFactory, member

pytestmark = pytest.mark.browser


def test_builder_counts_live_and_saves(page: Page) -> None:
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    user = member(workspace, Role.MARKETER, email="marketer@acme.test")
    for name, country in (("anna", "DE"), ("ben", "DE"), ("cara", "DE"), ("dora", "FR"), ("emil", "FR")):
        Contact.objects.create(workspace=workspace, email=f"{name}@example.com", country=country)
    ben = Contact.objects.get(email="ben@example.com")
    EventFactory(
        contact=ben, workspace=workspace, name="Order Completed", occurred_at=timezone.now() - dt.timedelta(days=2)
    )
    other = WorkspaceFactory(name="Globex", slug="globex")
    Contact.objects.create(workspace=other, email="gina@example.com", country="DE")

    log_in(page, user.email)
    page.goto("/audience/segments/new/")
    count = page.locator("#segment-live-count")
    expect(count).to_have_text("5")  # no conditions yet: everyone in this workspace

    page.locator("input[name=name]").fill("Germans who ordered")
    page.get_by_role("button", name="+ Condition").click()
    condition = page.locator(".rule-condition").first
    condition.locator("select[data-path='conditions[0].field']").select_option("country")
    value = condition.locator("input[data-path='conditions[0].value']")
    value.fill("DE")
    expect(count).to_have_text("3")
    value.fill("FR")
    expect(count).to_have_text("2")
    value.fill("de")
    expect(count).to_have_text("3")
    expect(page.locator(".segment-sample")).to_contain_text("cara@example.com")

    # A second condition: an event, first without a name — the rule's error is shown and marked.
    page.get_by_role("button", name="+ Condition").first.click()
    second = page.locator(".rule-condition").nth(1)
    second.locator("select[data-path='conditions[1]']").select_option("event")
    expect(page.locator(".rule-errors")).to_contain_text("Name the event")
    expect(second.locator("input[data-path='conditions[1].name']")).to_have_attribute("aria-invalid", "true")
    second.locator("input[data-path='conditions[1].name']").fill("Order Completed")
    expect(count).to_have_text("1")
    expect(page.locator(".segment-sample")).to_contain_text("ben@example.com")

    # The noun after a number agrees with it while it is typed ("at least 1 time", "2 times").
    times_input = second.locator("input[data-path='conditions[1].count']")
    times = second.locator("input[data-path='conditions[1].count'] + span")
    expect(times).to_have_text("time")
    times_input.fill("2")
    expect(times).to_have_text("times")
    times_input.fill("1")
    expect(times).to_have_text("time")
    days_input = second.locator("input[data-path='conditions[1].days']")
    days = second.locator("input[data-path='conditions[1].days'] + span")
    expect(days).to_have_text("days")
    days_input.fill("1")
    expect(days).to_have_text("day")
    days_input.fill("30")
    expect(days).to_have_text("days")
    expect(count).to_have_text("1")

    # A nested group, negated: "and not (city is set)" keeps ben (no city).
    page.get_by_role("button", name="+ Group").first.click()
    group = page.locator("fieldset.rule-group fieldset.rule-group")
    group.locator("input[type=checkbox]").first.check()
    group.locator("select[data-path='conditions[2].conditions[0].field']").select_option("city")
    group.locator("select[data-path='conditions[2].conditions[0].operator']").select_option("is_set")
    expect(count).to_have_text("1")

    page.get_by_role("button", name="Save segment").click()
    expect(page).to_have_url(re.compile(r"/audience/segments/\d+/$"))
    segment = Segment.objects.get(workspace=workspace)
    assert segment.name == "Germans who ordered"
    kinds = [c.get("kind", "group") for c in segment.rules["conditions"]]
    assert kinds == ["attribute", "event", "group"]
    assert segment.rules["conditions"][0]["value"] == "DE"
    assert segment.rules["conditions"][2]["negate"] is True
    expect(page.locator("main")).to_contain_text("Country (ISO code) is DE")
