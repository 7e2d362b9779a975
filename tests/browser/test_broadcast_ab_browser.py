"""The A/B test page in Chromium: a marketer sets up a subject test on a draft through the form,
the broadcast starts, the test group's opens arrive, the beat decides, and the page shows each
variant's figures, the verdict and the decision's reason. Screenshots of both states are left
in test-artifacts/ (gitignored) for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact, MailingList, Subscription, SubscriptionStatus
from campaigns.broadcasts import services
from campaigns.broadcasts.services import BroadcastInput
from campaigns.models import BroadcastTest, Message, MessageSource
from esp import clock
from esp.models import User, Workspace
from tests.browser.test_flows import log_in
from tests.factories import EmailTemplateFactory

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_a_subject_test_set_up_on_the_page_and_decided(page: Page, acme: Workspace, acme_owner: User) -> None:
    news = MailingList.objects.create(workspace=acme, name="News")
    for n in range(200):
        contact = Contact.objects.create(workspace=acme, email=f"p{n}@example.com")
        Subscription.objects.create(
            workspace=acme, contact=contact, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED
        )
    template = EmailTemplateFactory(workspace=acme, name="Autumn sale", subject="Autumn sale")
    broadcast = services.broadcast_create(
        workspace=acme, data=BroadcastInput(name="Autumn sale", template=template.pk, include_lists=[news.pk])
    )
    log_in(page, acme_owner.email)
    page.goto(f"/broadcasts/{broadcast.pk}/ab/")
    page.locator("input[name=test_percent]").fill("50")
    page.locator("input[name=subject_B]").fill("−20 % on everything, today only")
    page.locator("#ab-form button[type=submit]").click()
    expect(page.locator("input[name=subject_B]")).to_have_value("−20 % on everything, today only")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "broadcast-ab-setup.png"), full_page=True)
    assert BroadcastTest.objects.get(broadcast=broadcast).test_percent == 50

    clock.freeze()
    try:
        services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
        rows = Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk)))
        rows.update(state="sent", sent_at=clock.now())
        opened = {"A": 12, "B": 27}  # of 50 each (half of 200, split in two)
        for letter, count in opened.items():
            ids = list(rows.filter(data__variant=letter).values_list("pk", flat=True)[:count])
            Message.objects.filter(pk__in=ids).update(opened_at=clock.now())
        clock.advance(hours=4)
        services.broadcasts_tick()
    finally:
        clock.thaw()
    page.goto(f"/broadcasts/{broadcast.pk}/ab/")
    expect(page.locator("#ab-decision-title")).to_have_text("Decision: B")
    expect(page.locator("#ab-verdict")).to_contain_text("B is better: 54.0 % against 24.0 % for A (open rate)")
    expect(page.locator("tr.ab-rest")).to_contain_text("100")
    page.screenshot(path=str(ARTIFACTS / "broadcast-ab-decided.png"), full_page=True)
