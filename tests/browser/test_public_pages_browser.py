"""The recipient's pages (preference center, unsubscribe) submitted by a real browser: their
forms must pass the CSRF check with the headers Chromium sends under the pages' referrer
policy (Django's test client sends no Origin header, so only a browser shows this)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact, Subscription, Suppression
from audiences.services import ConsentContext, contact_save, list_save, subscription_subscribe
from campaigns.models import Message
from campaigns.tracking.tokens import message_token
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.browser


def _sent_to(contact: Contact) -> Message:
    return Message.objects.create(
        workspace=contact.workspace, contact=contact, source="broadcast:1", to_email=contact.email, state="sent"
    )


def _statuses(contact: Contact) -> dict[str, str]:
    return dict(Subscription.objects.filter(contact=contact).values_list("mailing_list__name", "status"))


def test_preference_center_saves_choices_and_unsubscribes_from_all(page: Page) -> None:
    acme = WorkspaceFactory(name="Acme")
    news = list_save(workspace=acme, data={"name": "News", "is_public": True, "double_opt_in": False})
    list_save(workspace=acme, data={"name": "Deals", "is_public": True, "double_opt_in": False})
    anna = contact_save(workspace=acme, data={"email": "anna@example.com"})[0]
    subscription_subscribe(workspace=acme, contact=anna, mailing_list=news, context=ConsentContext("admin"))
    token = message_token(_sent_to(anna).pk)

    page.goto(f"/e/p/{token}")
    page.get_by_role("checkbox", name="News").uncheck()
    page.get_by_role("checkbox", name="Deals").check()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_role("status")).to_have_text("Your choices are saved.")
    assert _statuses(anna) == {"News": "unsubscribed", "Deals": "subscribed"}

    page.get_by_role("button", name="Unsubscribe from all").click()
    expect(page.get_by_text("You are unsubscribed from all marketing emails.")).to_be_visible()
    assert Suppression.objects.filter(workspace=acme).count() == 1


def test_unsubscribe_page_confirms_in_the_browser(page: Page) -> None:
    acme = WorkspaceFactory(name="Acme")
    ben = contact_save(workspace=acme, data={"email": "ben@example.com"})[0]
    token = message_token(_sent_to(ben).pk)

    page.goto(f"/e/u/{token}")
    assert not Suppression.objects.filter(workspace=acme).exists()  # GET only asks
    page.get_by_role("button", name="Yes, unsubscribe me").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert Suppression.objects.filter(workspace=acme).count() == 1
