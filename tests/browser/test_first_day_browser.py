"""What a newcomer hits on the first day, checked in Chromium: checkboxes that an error or
help text must not cover, destructive actions that ask first, and a header that fits a phone.

Screenshots of the states a person must see (the subscribe page with its error, the
confirmation pages, every page at 390 px) are written to test-artifacts/first-day/ (gitignored)
so a reviewer can look at them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from audiences.services import list_save
from esp.models import User, Workspace
from tests.browser.test_flows import log_in

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "first-day"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_consent_checkbox_takes_its_own_click_after_an_error(page: Page, acme: Workspace, viewport: dict) -> None:
    page.set_viewport_size(viewport)
    news = list_save(workspace=acme, data={"name": "News", "is_public": True, "double_opt_in": False})
    page.goto(f"/subscribe/{acme.slug}/{news.pk}/")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("alert").first).to_contain_text("This field is required.")
    shot(page, f"subscribe-error-{viewport['width']}")

    box = page.locator("input[name=consent]")
    # A plain click on the box itself: Playwright refuses (times out) when another element
    # would receive it, which is what the error text lying over the box did.
    box.click(timeout=3000)
    expect(box).to_be_checked()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_checkboxes_with_help_text_take_their_clicks(
    page: Page, acme_owner: User, viewport: dict
) -> None:
    page.set_viewport_size(viewport)
    log_in(page, acme_owner.email)
    # New list, submitted without a name: the error shows and the boxes below still work.
    page.goto("/audience/lists/")
    page.locator("main form[method=post] button[type=submit]").last.click()
    for name in ("is_public", "double_opt_in"):
        box = page.locator(f"input[name={name}]")
        before = box.is_checked()
        box.click(timeout=3000)
        assert box.is_checked() is not before, name

    page.goto("/settings/sending/providers/new/?kind=smtp")
    boxes = page.locator("#provider-form input[type=checkbox]")
    assert boxes.count() > 0
    page.locator("#provider-form button[type=submit]").click()
    for index in range(page.locator("#provider-form input[type=checkbox]").count()):
        box = page.locator("#provider-form input[type=checkbox]").nth(index)
        before = box.is_checked()
        box.click(timeout=3000)
        assert box.is_checked() is not before
