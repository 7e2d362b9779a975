"""Publishing a changed live series in Chromium: the confirmation shows what changes and offers
each changed wait to the people waiting on it; the marketer ticks one, publishes, and reads the
versions page (desktop and phone).

Screenshots of the confirmation and the versions page are written to test-artifacts/versions/
(gitignored) so a reviewer can look at them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from automations.models import Enrollment
from automations.services import SeriesInput, series_update
from esp.models import Role
from tests.automations.series_helpers import contact, live_series, tick, track
from tests.browser.test_flows import log_in
from tests.factories import EmailTemplateFactory, WorkspaceFactory, member

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "versions"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_publish_a_changed_wait_for_those_waiting_then_read_the_versions(page: Page, clock: Any) -> None:
    acme = WorkspaceFactory(name="Acme", slug="acme")
    user = member(acme, Role.MARKETER, email="marketer@acme.test")
    welcome, thanks = (
        EmailTemplateFactory(workspace=acme, name="Welcome"),
        EmailTemplateFactory(workspace=acme, name="Thanks"),
    )
    series = live_series(
        acme,
        [
            {"key": "first", "type": "wait", "amount": 3, "unit": "days", "next": "hello"},
            {"key": "hello", "type": "send", "template": welcome.pk, "next": "second"},
            {"key": "second", "type": "wait", "amount": 5, "unit": "days", "next": "bye", "name": "Quiet week"},
            {"key": "bye", "type": "send", "template": thanks.pk},
        ],
        name="Two waits",
    )
    ann, bob = contact(acme, "ann@example.com"), contact(acme, "bob@example.com")
    track(ann, "Signed Up")
    clock.advance(days=3)
    tick()
    track(bob, "Signed Up")
    assert series.live_version is not None
    steps = copy.deepcopy(series.live_version.steps)
    steps["steps"][0]["amount"] = 1
    steps["steps"][2]["amount"] = 1
    steps["steps"].append({"key": "extra", "type": "send", "template": welcome.pk})
    steps["steps"][3]["next"] = "extra"
    series_update(workspace=acme, series_id=series.pk, data=SeriesInput(steps=steps))

    log_in(page, user.email)
    page.set_viewport_size(DESKTOP)
    page.goto(f"/series/{series.pk}/")
    page.locator("#series-actions").get_by_role("button", name="Publish", exact=True).click()
    diff = page.locator("#publish-diff")
    expect(diff).to_contain_text("What changes from the live version 1")
    expect(diff.locator(".diff-added")).to_contain_text("Send “Welcome”")
    expect(diff.locator(".diff-changed")).to_contain_text("Wait 5 days → Wait 1 day")
    expect(diff.locator(".diff-changed")).to_contain_text("changed: length")
    ann_box = page.get_by_label("Quiet week: apply the new wait to the 1 person waiting here now")
    bob_box = page.get_by_label("first: apply the new wait to the 1 person waiting here now")
    expect(bob_box).not_to_be_checked()
    ann_box.check()
    shot(page, "publish-desktop")
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("Version 2 is live.")
    assert Enrollment.objects.get(contact=ann).version.number == 2
    assert Enrollment.objects.get(contact=bob).version.number == 1

    page.locator("#series-actions").get_by_role("button", name="Versions").click()
    expect(page.get_by_role("heading", name="Versions", exact=True)).to_be_visible()
    newest = page.locator("#version-2")
    expect(newest).to_contain_text("live")
    expect(newest).to_contain_text("by marketer@acme.test")
    expect(newest).to_contain_text("1 enrollment on it")
    expect(newest.locator("details")).to_have_attribute("open", "")
    expect(newest.locator("summary")).to_contain_text("Against version 1: 1 step added, 3 steps changed")
    older = page.locator("#version-1")
    expect(older.locator(".version-diff")).to_be_hidden()
    older.locator("summary").click()
    expect(older.locator(".diff-added")).to_contain_text("Send “Thanks”")
    shot(page, "versions-desktop")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "versions-phone")
