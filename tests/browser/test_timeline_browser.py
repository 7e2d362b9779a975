"""A contact's timeline and the event explorer in Chromium: htmx brings older events into the
profile's table, properties open in place, and the explorer filters by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Event
from audiences.services import contact_save
from esp.models import Role
from tests.browser.test_flows import log_in
from tests.factories import WorkspaceFactory, member

pytestmark = pytest.mark.browser

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_viewer_pages_back_through_a_timeline_and_filters_the_explorer(page: Page) -> None:
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    ann, _ = contact_save(workspace=workspace, data={"email": "ann@example.com"})
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            contact=ann,
            type="track",
            name="Order Completed" if n % 10 == 0 else "Product Viewed",
            properties={"order_id": f"A-{n}", "total": 10 + n, "currency": "EUR"}
            if n % 10 == 0
            else {"name": f"Shoe {n}"},
            message_id=f"m-{n}",
            occurred_at=NOW - timedelta(hours=n),
            received_at=NOW - timedelta(hours=n),
        )
        for n in range(45)
    )
    user = member(workspace, Role.VIEWER, email="viewer@acme.test")

    log_in(page, user.email)
    page.goto(f"/audience/contacts/{ann.pk}/")
    rows = page.locator("#timeline tbody tr:has(time)")
    expect(rows).to_have_count(20)
    page.get_by_role("button", name="Older events").click()
    expect(rows).to_have_count(40)
    page.get_by_role("button", name="Older events").click()
    expect(rows).to_have_count(45)
    expect(page.get_by_role("button", name="Older events")).to_have_count(0)
    expect(rows.last).to_contain_text("Shoe 44")  # the oldest, last

    first_order = rows.filter(has_text="Order Completed").first
    expect(first_order).to_contain_text("#A-0")
    first_order.locator("summary").click()
    expect(first_order.locator("pre").first).to_be_visible()
    expect(first_order.locator("pre").first).to_contain_text('"order_id": "A-0"')

    page.goto("/audience/events/")
    page.locator("select[name=name]").select_option("Order Completed")
    page.locator("main form button[type=submit]").click()
    events = page.locator("main table tbody tr")
    expect(events).to_have_count(5)
    expect(events.first).to_contain_text("ann@example.com")
    events.first.get_by_role("link", name="ann@example.com").click()
    expect(page).to_have_url(f"{page.url.split('/audience')[0]}/audience/contacts/{ann.pk}/")
