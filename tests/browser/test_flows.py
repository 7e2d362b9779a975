"""End-to-end flows through the real pages in Chromium: sign-up and login, API keys, the
language switch, and inviting a read-only teammate. Everything a person does goes through
clicks and form fills; the database is only read to check the result. Owners come from the
`acme_owner` fixture (tests/conftest.py: workspace "Acme", owner@acme.test, password
tests.factories.PASSWORD); live_server makes the database transactional."""

from __future__ import annotations

import re

import pytest
import requests
from django.utils import translation
from playwright.sync_api import Page, expect

from esp import tasks
from esp.models import Invitation, Membership, OutboxMessage, Role, User, Workspace
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "plum tart at noon 42"


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """The login form, located by field names so it works in any interface language."""
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("main button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/$"))


def log_out(page: Page, email: str) -> None:
    """The account dropdown in the header (its summary is the user's email) → Log out."""
    page.locator("header summary", has_text=email).click()
    page.locator("header form[action='/accounts/logout/'] button").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))


def translated(text: str, language: str) -> str:
    """What the catalogues make of `text` — the English text itself when there is no translation."""
    with translation.override(language):
        return translation.gettext(text)


def test_sign_up_then_log_out_and_in_again(page: Page) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("Email address").fill("ada@atelier.test")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_label("Shop or company name").fill("Atelier Ada")
    page.locator("main").get_by_role("button", name="Sign up").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("main h1")).to_have_text("Atelier Ada")
    expect(page.locator("header .workspace-name")).to_contain_text("Atelier Ada")
    membership = Membership.objects.select_related("workspace").get(user__email="ada@atelier.test")
    assert (membership.workspace.name, membership.role) == ("Atelier Ada", Role.OWNER)

    page.get_by_label("Your account").click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.locator("header")).not_to_contain_text("ada@atelier.test")

    page.get_by_label("Email address").fill("ada@atelier.test")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("main h1")).to_have_text("Atelier Ada")


def test_owner_creates_api_key_whose_secret_is_shown_once(page: Page, live_server, acme_owner: User) -> None:
    log_in(page, acme_owner.email)
    page.locator("header summary", has_text="Settings").click()
    page.get_by_role("link", name="API keys").click()
    expect(page).to_have_url(re.compile(r"/settings/api-keys/$"))

    page.get_by_label("Name").fill("Shop backend")
    page.locator("input[name=scopes][value='events:write']").check()
    page.locator("input[name=scopes][value='contacts:read']").check()
    page.get_by_role("button", name="Create key").click()

    secret_element = page.locator("#new-api-key")
    expect(secret_element).to_have_text(re.compile(r"^esk_\S+$"))
    secret = secret_element.inner_text().strip()

    response = requests.get(f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["workspace"]["name"] == "Acme"
    assert body["api_key"]["name"] == "Shop backend"
    assert sorted(body["api_key"]["scopes"]) == ["contacts:read", "events:write"]

    page.goto("/settings/api-keys/")
    expect(page.locator("tbody")).to_contain_text("Shop backend")
    expect(page.locator("#new-api-key")).to_have_count(0)
    assert secret not in page.content()
    # Only the public prefix is listed.
    prefix = body["api_key"]["prefix"]
    expect(page.locator("tbody code")).to_have_text(f"esk_{prefix}_…")


def test_language_switch_for_a_visitor(page: Page) -> None:
    page.goto("/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.locator("#language-select").select_option("ru")

    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.locator("main h1")).to_have_text(translated("Log in", "ru"))
    expect(page.locator("#language-select")).to_have_value("ru")


def test_language_choice_is_remembered_on_the_account(new_context, acme_owner: User) -> None:
    page = new_context().new_page()
    log_in(page, acme_owner.email)
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.locator("#language-select").select_option("ru")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page).to_have_url(re.compile(r"/$"))
    acme_owner.refresh_from_db()
    assert acme_owner.language == "ru"

    log_out(page, acme_owner.email)
    expect(page.locator("html")).to_have_attribute("lang", "ru")  # the cookie, for now

    # A new browser has no language cookie and asks for English: the account's choice wins.
    other_device = new_context().new_page()
    other_device.goto("/accounts/login/")
    expect(other_device.locator("html")).to_have_attribute("lang", "en")
    log_in(other_device, acme_owner.email)
    expect(other_device.locator("html")).to_have_attribute("lang", "ru")
    expect(other_device.locator("main h1")).to_have_text("Acme")


def test_invited_viewer_can_look_but_not_touch(
    new_context,
    live_server,
    settings,
    monkeypatch,
    acme_owner: User,
) -> None:
    # Links in mail point at the live server, and mail goes to the OutboxMessage table as in
    # production (Django's test set-up swaps in its locmem backend). The mail task is not put on
    # the broker (the test suite's queue has no worker here); the test runs it below.
    settings.PUBLIC_BASE_URL = live_server.url
    settings.EMAIL_BACKEND = "esp.mail.OutboxBackend"
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_invitation_email, "apply_async", lambda args: queued.append(*args))

    owner = new_context().new_page()
    log_in(owner, acme_owner.email)
    owner.goto("/settings/members/")
    invite_form = owner.locator("main form", has=owner.get_by_role("button", name="Send invitation"))
    invite_form.get_by_label("Email address").fill("viewer@acme.test")
    invite_form.get_by_label("Role").select_option(label="Viewer")
    invite_form.get_by_role("button", name="Send invitation").click()
    expect(owner.get_by_role("status")).to_contain_text("Invitation sent to viewer@acme.test")

    invitation = Invitation.objects.get(email="viewer@acme.test")
    assert (invitation.role, queued) == (Role.VIEWER, [invitation.pk])
    tasks.send_invitation_email(invitation.pk)
    mail = OutboxMessage.objects.get(to__contains=["viewer@acme.test"])
    link = re.search(rf"{re.escape(live_server.url)}/invite/\S+/", mail.text_body)
    assert link, mail.text_body

    viewer = new_context().new_page()
    viewer.goto(link.group())
    expect(viewer.locator("main h1")).to_contain_text("Acme")
    viewer.get_by_label("Password").fill(NEW_PASSWORD)
    viewer.get_by_role("button", name="Create account and join").click()
    expect(viewer).to_have_url(re.compile(r"/$"))
    expect(viewer.locator("main h1")).to_have_text("Acme")
    expect(viewer.locator("header .role-badge")).to_have_text("Viewer")

    viewer.goto("/settings/members/")
    expect(viewer.locator("main")).to_contain_text("viewer@acme.test")
    expect(viewer.get_by_role("button", name="Send invitation")).to_have_count(0)
    expect(viewer.locator("main input[name=email]")).to_have_count(0)

    viewer.goto("/settings/workspace/")
    fields = viewer.locator("main form").locator("input:not([type=hidden]), select, textarea")
    expect(fields).to_have_count(7)  # name, time zone, sender name and address, postal address, language, currency
    for field in fields.all():
        expect(field).to_be_disabled()
    expect(viewer.get_by_role("button", name="Save")).to_have_count(0)

    assert post_workspace_settings(viewer, name="Hijacked") == 403
    assert Workspace.objects.get(slug="acme").name == "Acme"
    # The same request from the owner goes through, so the 403 above is the role, not CSRF.
    assert post_workspace_settings(owner, name="Acme Ltd") == 302
    assert Workspace.objects.get(slug="acme").name == "Acme Ltd"

    expect(viewer.locator("header a[href='/settings/api-keys/']")).to_have_count(0)
    response = viewer.goto("/settings/api-keys/")
    assert response is not None and response.status == 403


def post_workspace_settings(page: Page, name: str) -> int:
    """POST the workspace settings form outside the UI, with the page's session and CSRF
    cookie (as a script or a tampered form would); the status, redirects not followed."""
    csrf_token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        "/settings/workspace/",
        headers={"X-CSRFToken": csrf_token},
        max_redirects=0,
        form={
            "name": name,
            "time_zone": "UTC",
            "default_from_name": name,
            "default_from_email": "hello@acme.example",
            "postal_address": "1 Market Street, Springfield",
        },
    )
    return response.status
