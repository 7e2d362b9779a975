"""A broadcast in Chromium: composed to a segment with the live count, scheduled for a moment
through its confirmation, started by the beat when the engine's clock gets there, sent by the
send drain while the page's progress bar follows it to "Sent", and its report."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact, MailingList, Segment, Subscription, SubscriptionStatus
from campaigns.broadcasts.services import broadcasts_tick
from campaigns.delivery.sender import messages_send_due
from campaigns.events import message_event_record
from campaigns.models import Broadcast, BroadcastStatus, Message, MessageEventType, MessageSource
from esp.models import Role
from tests.browser.conftest import ARTIFACTS_DIR
from tests.browser.test_flows import log_in
from tests.factories import EmailTemplateFactory, WorkspaceFactory, member

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clock")]

MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ contact.first_name }}</mj-text>"
    '<mj-button href="https://shop.example/sale">Shop the sale</mj-button></mj-column></mj-section></mj-body></mjml>'
)


def _shot(page: Page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(ARTIFACTS_DIR) / f"broadcasts-{name}.png"), full_page=True)


def test_compose_schedule_watch_and_report(page: Page, clock: Any) -> None:
    shop = WorkspaceFactory(name="Shop", slug="shop", time_zone="Europe/Sofia")
    marketer = member(shop, Role.MARKETER, email="marketer@shop.test")
    news = MailingList.objects.create(workspace=shop, name="Newsletter")
    for name, tags in (("Ann", ["vip"]), ("Bob", ["vip"]), ("Cat", ["vip"]), ("Dan", [])):
        contact = Contact.objects.create(
            workspace=shop, email=f"{name.lower()}@example.com", first_name=name, tags=tags
        )
        Subscription.objects.create(
            workspace=shop, contact=contact, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED
        )
    Segment.objects.create(
        workspace=shop, name="VIP", rules={"conditions": [{"kind": "tag", "operator": "in", "value": ["vip"]}]}
    )
    EmailTemplateFactory(workspace=shop, name="Autumn sale", subject="Sale for {{ contact.first_name }}", mjml=MJML)

    log_in(page, marketer.email)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Broadcasts", exact=True).click()
    page.locator("#new-broadcast").click()
    page.locator("#id_name").fill("Autumn sale to VIPs")
    expect(page.locator("#count-recipients")).to_have_text("0")
    page.locator("#id_include_segments").select_option(label="VIP")
    expect(page.locator("#count-recipients")).to_have_text("3")
    expect(page.locator("#count-matching")).to_have_text("3")
    page.locator("#id_template").select_option(label="Autumn sale")
    page.locator("#preview-contact").fill("ann@example.com")
    page.locator("#show-preview").click()
    expect(page.locator("#preview-subject")).to_have_text("Sale for Ann")
    page.get_by_label("At a date and time").check()
    zone = zoneinfo.ZoneInfo("Europe/Sofia")
    at = (clock.now() + dt.timedelta(days=1)).astimezone(zone).replace(second=0, microsecond=0)
    page.locator("#id_send_at").fill(at.strftime("%Y-%m-%dT%H:%M"))
    _shot(page, "composer-1280")
    page.locator("#save-and-schedule").click()

    # The confirmation says how many get it; confirming schedules it.
    expect(page.locator("#confirm-question")).to_have_text("Send “Autumn sale to VIPs” to 3 recipients?")
    page.locator("#confirm-button").click()
    expect(page.locator("#broadcast-status")).to_have_text("Scheduled")
    broadcast = Broadcast.objects.get(workspace=shop)
    assert broadcast.status == BroadcastStatus.SCHEDULED
    assert broadcast.send_at == at.astimezone(dt.UTC)
    assert broadcast.include_segments == [Segment.objects.get(workspace=shop).pk]

    # The engine's clock reaches the moment: the beat takes the audience, the drain sends.
    clock.advance(days=1, minutes=1)
    assert broadcasts_tick() == {"started": 1, "finished": 0}
    expect(page.locator("#broadcast-status")).to_have_text("Sending")
    expect(page.locator("#progress-queued")).to_have_text("3")
    _shot(page, "sending-1280")
    messages_send_due()
    expect(page.locator("#progress-sent")).to_have_text("3")
    assert broadcasts_tick()["finished"] == 1
    expect(page.locator("#broadcast-status")).to_have_text("Sent")
    expect(page.locator(".broadcast-bar .bar-sent")).to_have_attribute("style", "width: 100%")

    # Ann opens and clicks; a link scanner's click is left out of the report.
    ann = Message.objects.get(source=str(MessageSource.broadcast(broadcast.pk)), to_email="ann@example.com")
    assert ann.links, "the sale link is tracked"
    now = clock.now()
    message_event_record(message=ann, type=MessageEventType.OPENED, occurred_at=now, event_key="t:open")
    message_event_record(
        message=ann, type=MessageEventType.CLICKED, occurred_at=now, event_key="t:click", url=ann.links[0],
        details={"link": 0},
    )  # fmt: skip
    message_event_record(
        message=ann, type=MessageEventType.CLICKED, occurred_at=now, event_key="t:scan", url=ann.links[0],
        details={"link": 0}, is_machine=True,
    )  # fmt: skip
    page.reload()
    expect(page.locator("#report-opened")).to_have_text("1")
    expect(page.locator("#report-clicked")).to_have_text("1")
    expect(page.locator("#report-open-rate")).to_contain_text("33.3 %")
    expect(page.locator("#click-map tbody tr")).to_have_count(1)
    expect(page.locator("#click-map tbody td").nth(2)).to_have_text("1")
    expect(page.locator("#broadcast-live")).not_to_have_attribute("hx-trigger", "every 3s")
    _shot(page, "report-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    _shot(page, "report-390")
    # The list shows it with its figures.
    page.goto("/broadcasts/")
    row = page.locator("#broadcasts-table tbody tr").first
    expect(row).to_contain_text("Autumn sale to VIPs")
    expect(row).to_contain_text("Sent")
    expect(row).to_contain_text("Segments “VIP”")
    _shot(page, "list-390")
    page.goto("/broadcasts/new/")
    _shot(page, "composer-390")
