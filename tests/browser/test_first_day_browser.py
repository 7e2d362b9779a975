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
def test_checkboxes_with_help_text_take_their_clicks(page: Page, acme_owner: User, viewport: dict) -> None:
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


def test_delete_contact_asks_first_and_says_what_goes(page: Page, acme: Workspace, acme_owner: User) -> None:
    from audiences.models import Contact, CustomField, Event
    from audiences.services import contact_save
    from tests.factories import EventFactory

    ana = contact_save(workspace=acme, data={"email": "ana@example.com"})[0]
    EventFactory.create_batch(3, workspace=acme, contact=ana)
    log_in(page, acme_owner.email)
    page.goto(f"/audience/contacts/{ana.pk}/")
    page.get_by_role("button", name="Delete contact").click()

    expect(page.get_by_role("heading", name="Delete contact")).to_be_visible()
    expect(page.locator(".consequences")).to_contain_text("3 events (orders, product views, visits) are deleted.")
    shot(page, "confirm-delete-contact")
    assert Contact.objects.filter(pk=ana.pk).exists()  # the link only asked

    page.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(re.compile(rf"/audience/contacts/{ana.pk}/$"))
    page.get_by_role("button", name="Delete contact").click()
    page.locator("main form").get_by_role("button", name="Delete contact").click()
    expect(page.get_by_role("status")).to_have_text("Contact ana@example.com deleted, with 3 events.")
    assert not Contact.objects.filter(pk=ana.pk).exists()
    assert not Event.objects.filter(workspace=acme).exists()

    CustomField.objects.create(workspace=acme, key="shoe_size", label="Shoe size", type="number")
    contact_save(workspace=acme, data={"email": "ben@example.com", "attributes": {"shoe_size": 44}})
    page.goto("/audience/fields/")
    page.get_by_role("button", name="Remove").click()
    expect(page.locator(".consequences")).to_contain_text("1 contact has a value in it.")
    shot(page, "confirm-remove-field")
    page.get_by_label("Also delete the values stored on contacts").check()
    page.get_by_role("button", name="Remove field").click()
    expect(page.get_by_role("status")).to_have_text("Field shoe_size removed, and its value deleted from 1 contact.")
    assert not CustomField.objects.filter(workspace=acme).exists()
    assert Contact.objects.get(email="ben@example.com").attributes == {}


def test_revoke_key_and_remove_member_ask_first(page: Page, acme: Workspace, acme_owner: User) -> None:
    from esp.models import ApiKey, Membership, Role
    from tests.factories import api_key, member

    api_key(acme, name="Shop backend")
    member(acme, Role.MARKETER, email="mia@acme.test")
    log_in(page, acme_owner.email)

    page.goto("/settings/api-keys/")
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("heading", name="Revoke API key")).to_be_visible()
    expect(page.locator(".consequences")).to_contain_text("It has never been used.")
    shot(page, "confirm-revoke-key")
    assert ApiKey.objects.get(workspace=acme).revoked_at is None
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status")).to_have_text("API key Shop backend revoked.")
    assert ApiKey.objects.get(workspace=acme).revoked_at is not None

    page.goto("/settings/members/")
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", name="Remove member")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Remove mia@acme.test from Acme?")
    shot(page, "confirm-remove-member")
    assert Membership.objects.filter(workspace=acme, user__email="mia@acme.test").exists()
    page.get_by_role("button", name="Remove member").click()
    expect(page.get_by_role("status")).to_have_text("mia@acme.test was removed from the workspace.")
    assert not Membership.objects.filter(workspace=acme, user__email="mia@acme.test").exists()
