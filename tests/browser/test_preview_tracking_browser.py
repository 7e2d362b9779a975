"""A member looking at a sent email inside the app is not its recipient: the Outbox page and
the send log's preview must never load the open pixel or follow a tracked link. Checked in
Chromium, with the mail's links pointing at the live server, so a loaded pixel would count."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from audiences.services import contact_save
from campaigns.models import Message, MessageEvent
from campaigns.tracking.links import track_html
from esp.models import User, Workspace
from tests.browser.test_flows import log_in
from tests.factories import EmailTemplateFactory, MessageFactory, OutboxMessageFactory

pytestmark = pytest.mark.browser

HTML = '<html><body><p>Hello</p><a href="https://shop.example/sale">Sale</a></body></html>'


def test_outbox_preview_loads_no_pixel(page: Page, live_server, settings, acme: Workspace, acme_owner: User) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    ana = contact_save(workspace=acme, data={"email": "ana@example.com"})[0]
    message = MessageFactory(contact=ana, template=EmailTemplateFactory(workspace=acme))
    tracked, links = track_html(HTML, message=message, settings=None)
    Message.objects.filter(pk=message.pk).update(links=links)
    assert f"{live_server.url}/e/o/" in tracked  # the stored mail does carry the pixel
    stored = OutboxMessageFactory(workspace=acme, to=[ana.email], subject="Sale", html_body=tracked)

    pixel_requests: list[str] = []
    page.on("request", lambda request: pixel_requests.append(request.url) if "/e/" in request.url else None)
    log_in(page, acme_owner.email)
    page.goto(f"/settings/outbox/{stored.pk}/")
    frame = page.frame_locator("iframe.mail-preview")
    expect(frame.get_by_text("Hello")).to_be_visible()
    frame.get_by_role("link", name="Sale").click()
    page.goto(f"/messages/{message.pk}/")
    expect(page.frame_locator("iframe.mail-preview").locator("body")).to_be_visible()
    page.wait_for_timeout(500)

    assert pixel_requests == []
    message.refresh_from_db()
    assert message.opened_at is None
    assert not MessageEvent.objects.filter(message=message).exists()
