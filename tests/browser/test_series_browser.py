"""The series page in Chromium: its step counts refresh by themselves while people move through
the series, the dry run answers in place, and pausing asks first."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Page, expect

from automations.models import SeriesStatus
from esp.models import Role
from tests.automations.series_helpers import contact, live_series, track
from tests.browser.test_flows import log_in
from tests.factories import EmailTemplateFactory, WorkspaceFactory, member

pytestmark = pytest.mark.browser


def test_series_page_counts_refresh_and_dry_run(page: Page) -> None:
    acme = WorkspaceFactory(name="Acme", slug="acme")
    user = member(acme, Role.MARKETER, email="marketer@acme.test")
    welcome = EmailTemplateFactory(workspace=acme, name="Welcome")
    series = live_series(
        acme,
        [
            {"key": "hello", "type": "send", "template": welcome.pk, "next": "pause"},
            {"key": "pause", "type": "wait", "amount": 2, "unit": "days"},
        ],
        name="Welcome drip",
    )
    track(contact(acme, "ann@example.com"), "Signed Up")

    log_in(page, user.email)
    page.goto(f"/series/{series.pk}/")
    reached = page.locator("#step-hello [data-count=reached]")
    expect(reached).to_have_text("1")
    expect(page.locator("#step-pause [data-count=waiting]")).to_have_text("1")

    # Someone enters while the page is open: the counts follow without a reload.
    track(contact(acme, "bob@example.com"), "Signed Up")
    expect(reached).to_have_text("2", timeout=12_000)

    page.locator("input[name=email]").fill("ann@example.com")
    page.locator("input[name=since]").fill((dt.date.today() - dt.timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#dry-run-result")).to_contain_text("would send email")
    expect(page).to_have_url(f"{page.url.split('/series/')[0]}/series/{series.pk}/")

    page.locator("#series-actions").get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("heading", name="Pause series")).to_be_visible()
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash")).to_contain_text("Series paused.")
    series.refresh_from_db()
    assert series.status == SeriesStatus.PAUSED


def test_series_tree_puts_branches_side_by_side_and_stacks_them_on_a_phone(page: Page) -> None:
    acme = WorkspaceFactory(name="Acme", slug="acme")
    user = member(acme, Role.VIEWER, email="viewer@acme.test")
    coupon = EmailTemplateFactory(workspace=acme, name="Coupon")
    series = live_series(
        acme,
        [
            {"key": "pause", "type": "wait", "amount": 1, "unit": "hours", "next": "ordered"},
            {
                "key": "ordered",
                "type": "condition",
                "events_since_entry": [{"event": "Order Completed"}],
                "yes": "thanks",
                "no": "coupon",
            },
            {"key": "thanks", "type": "exit"},
            {"key": "coupon", "type": "send", "template": coupon.pk},
        ],
        name="Cart",
    )
    log_in(page, user.email)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/series/{series.pk}/")
    yes, no = page.locator("#step-thanks").bounding_box(), page.locator("#step-coupon").bounding_box()
    assert yes and no and abs(yes["y"] - no["y"]) < 2 and no["x"] > yes["x"] + yes["width"]

    page.set_viewport_size({"width": 390, "height": 800})
    yes, no = page.locator("#step-thanks").bounding_box(), page.locator("#step-coupon").bounding_box()
    assert yes and no and no["y"] > yes["y"] + yes["height"]
    # Nothing sticks out of the phone's screen: the page does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
