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


# Every page of the site a member reaches from the header (ids filled in by the test).
PHONE_PAGES = [
    "/", "/audience/contacts/", "/audience/contacts/new/", "/audience/contacts/{contact}/", "/audience/events/",
    "/audience/rfm/", "/audience/lifecycle/", "/audience/segments/", "/audience/segments/new/",
    "/audience/lists/", "/audience/fields/", "/audience/suppressions/", "/audience/imports/", "/audience/exports/",
    "/content/templates/", "/content/templates/new/", "/content/templates/{template}/", "/content/layout/",
    "/messages/", "/messages/{message}/", "/audience/contacts/{contact}/delete/",
    "/settings/workspace/", "/settings/members/", "/settings/api-keys/", "/settings/sending/providers/",
    "/settings/sending/providers/new/?kind=smtp", "/settings/sending/senders/", "/settings/sending/delivery/",
    "/settings/outbox/", "/accounts/", "/accounts/password/change/", "/workspaces/new/",
]  # fmt: skip


def _overflow(page: Page) -> int:
    """How many pixels the page is wider than the screen (a sideways scroll on a phone)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_every_page_fits_a_phone_and_the_menu_reaches_settings(page: Page, acme: Workspace, acme_owner: User) -> None:
    from audiences.services import contact_save
    from tests.factories import EmailTemplateFactory, MessageFactory

    contact = contact_save(workspace=acme, data={"email": "ana@example.com", "first_name": "Ana"})[0]
    template = EmailTemplateFactory(workspace=acme, name="Welcome")
    message = MessageFactory(contact=contact, template=template, provider_message_id="<" + "x" * 60 + "@example.com>")
    page.set_viewport_size(PHONE)
    log_in(page, acme_owner.email)
    wide = {}
    for path in PHONE_PAGES:
        url = path.format(contact=contact.pk, template=template.pk, message=message.pk)
        response = page.goto(url)
        assert response is not None and response.ok, url
        shot(page, "phone" + re.sub(r"[^\w]+", "-", url).rstrip("-"))
        if _overflow(page) > 0:
            wide[url] = _overflow(page)
    assert not wide, f"pages wider than a 390 px screen: {wide}"

    page.goto("/")
    nav = page.locator("#main-nav")
    expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    shot(page, "phone-menu-open")
    nav.locator("summary", has_text="Settings").click()
    nav.get_by_role("link", name="Members & roles").click()
    expect(page).to_have_url(re.compile(r"/settings/members/$"))

    page.get_by_role("button", name="Menu").click()
    page.get_by_label("Your account").click()
    page.get_by_role("link", name="Preferences").click()
    expect(page).to_have_url(re.compile(r"/accounts/$"))


def test_desktop_header_shows_the_navigation_without_a_menu_button(page: Page, acme_owner: User) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page, acme_owner.email)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.locator("#main-nav")).to_be_visible()
    expect(page.locator("header summary", has_text="Settings")).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_contact_search_placeholder_is_shown_whole(page: Page, acme_owner: User, viewport: dict) -> None:
    page.set_viewport_size(viewport)
    log_in(page, acme_owner.email)
    page.goto("/audience/contacts/")
    search = page.locator("input[name=q]")
    # Room inside the box (without padding and the search icon) against the placeholder's width.
    room, needed = search.evaluate(
        """input => {
            const style = getComputedStyle(input);
            const context = document.createElement("canvas").getContext("2d");
            context.font = style.font;
            const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            return [room, context.measureText(input.placeholder).width];
        }"""
    )
    assert needed > 0
    assert room >= needed, f"placeholder needs {needed:.0f}px, the box has {room:.0f}px"
