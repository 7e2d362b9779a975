"""The issue's must-show in one flow, in Chromium: a marketer composes a broadcast to a segment,
sets up an A/B test of its subject, schedules it; the beat starts it when the engine's clock gets
there and the progress bar follows the test group out; opens come in (B's subject more); after
the wait the beat chooses B and sends it to the rest only; the page shows the decision with its
reason and the report."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact, MailingList, Segment, Subscription, SubscriptionStatus
from campaigns.broadcasts.services import broadcasts_tick
from campaigns.delivery.sender import messages_send_due
from campaigns.models import Broadcast, BroadcastStatus, BroadcastTest, Message, MessageSource
from esp.models import Role
from tests.browser.test_flows import log_in
from tests.factories import EmailTemplateFactory, WorkspaceFactory, member

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clock")]
RECIPIENTS = 20


def test_an_ab_subject_test_from_composer_to_winner_and_report(page: Page, clock: Any) -> None:
    shop = WorkspaceFactory(name="Shop", slug="shop", time_zone="Europe/Sofia")
    marketer = member(shop, Role.MARKETER, email="marketer@shop.test")
    news = MailingList.objects.create(workspace=shop, name="Newsletter")
    for n in range(RECIPIENTS + 3):
        contact = Contact.objects.create(
            workspace=shop, email=f"c{n}@example.com", first_name=f"C{n}", tags=["buyer"] if n < RECIPIENTS else []
        )
        Subscription.objects.create(
            workspace=shop, contact=contact, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED
        )
    Segment.objects.create(
        workspace=shop, name="Buyers", rules={"conditions": [{"kind": "tag", "operator": "in", "value": ["buyer"]}]}
    )
    EmailTemplateFactory(workspace=shop, name="Autumn sale", subject="Autumn sale")

    # Compose to the segment; the live count says 20.
    log_in(page, marketer.email)
    page.goto("/broadcasts/new/")
    page.locator("#id_name").fill("Autumn sale")
    page.locator("#id_include_segments").select_option(label="Buyers")
    expect(page.locator("#count-recipients")).to_have_text(str(RECIPIENTS))
    page.locator("#id_template").select_option(label="Autumn sale")
    page.get_by_label("At a date and time").check()
    at = (clock.now() + dt.timedelta(hours=2)).astimezone(zoneinfo.ZoneInfo("Europe/Sofia"))
    page.locator("#id_send_at").fill(at.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Save draft").click()
    broadcast = Broadcast.objects.get(workspace=shop)

    # The A/B test: half the audience, A the template's subject, B another; the winner by opens.
    page.locator("#broadcast-ab a").click()
    page.locator("input[name=test_percent]").fill("50")
    page.locator("input[name=subject_B]").fill("{{ contact.first_name }}, −20 % today only")
    page.locator("#ab-form button[type=submit]").click()
    expect(page.locator("input[name=subject_B]")).to_have_value("{{ contact.first_name }}, −20 % today only")

    # Schedule through the confirmation.
    page.goto(f"/broadcasts/{broadcast.pk}/")
    page.locator("#schedule-button").click()
    page.locator("#confirm-button").click()
    expect(page.locator("#broadcast-status")).to_have_text("Scheduled")

    # The clock reaches the moment: the test group (10) goes out, 5 each.
    clock.advance(hours=2, minutes=1)
    broadcasts_tick()
    messages_send_due()
    expect(page.locator("#broadcast-status")).to_have_text("Sending")
    expect(page.locator("#progress-sent")).to_have_text(str(RECIPIENTS // 2))
    rows = Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk)))
    assert rows.filter(data__variant="A").count() == rows.filter(data__variant="B").count() == RECIPIENTS // 4
    test_group = set(rows.values_list("contact_id", flat=True))
    for letter, opens in (("A", 1), ("B", 4)):
        ids = list(rows.filter(data__variant=letter).values_list("pk", flat=True)[:opens])
        Message.objects.filter(pk__in=ids).update(opened_at=clock.now() + dt.timedelta(minutes=30))

    # After the 4-hour wait the beat decides: B goes to the other 10, and to nobody of the test group.
    clock.advance(hours=4, minutes=5)
    broadcasts_tick()
    messages_send_due()
    broadcasts_tick()
    rest = rows.exclude(contact_id__in=test_group)
    assert rest.count() == RECIPIENTS // 2 and set(rest.values_list("data__variant", flat=True)) == {"B"}
    assert rows.count() == RECIPIENTS  # one email per recipient, test group included
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENT
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert test.winner == "B" and test.decision_reason

    page.goto(f"/broadcasts/{broadcast.pk}/ab/")
    expect(page.locator("#ab-decision-title")).to_have_text("Decision: B")
    expect(page.locator("#ab-verdict")).to_contain_text("B")
    page.goto(f"/broadcasts/{broadcast.pk}/")
    expect(page.locator("#broadcast-status")).to_have_text("Sent")
    expect(page.locator("#progress-sent")).to_have_text(str(RECIPIENTS))
    expect(page.locator("#report-opened")).to_have_text("5")
