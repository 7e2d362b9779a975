"""The builder's side panel in Chromium: a condition built with the segment builder (drawn in a
panel htmx swapped in) is saved and said on its card; the send step shows its email as a
thumbnail for a sample contact, following the subject typed; and no page logs an error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact
from esp.models import Role
from tests.automations.series_helpers import live_series
from tests.browser.test_flows import log_in
from tests.factories import EmailTemplateFactory, WorkspaceFactory, member

pytestmark = pytest.mark.browser


def test_a_condition_built_in_the_panel_and_the_email_thumbnail(page: Page) -> None:
    acme = WorkspaceFactory(name="Acme", slug="acme")
    user = member(acme, Role.MARKETER, email="marketer@acme.test")
    for name, country in (("anna", "DE"), ("ben", "DE"), ("cara", "FR")):
        Contact.objects.create(workspace=acme, email=f"{name}@example.com", first_name=name.title(), country=country)
    welcome = EmailTemplateFactory(
        workspace=acme,
        name="Welcome",
        subject="Welcome, {{ contact.first_name }}",
        # A font of the system's: MJML's default would load Ubuntu from Google (no outside host).
        mjml="<mjml><mj-head><mj-attributes><mj-all font-family='Arial, sans-serif' /></mj-attributes></mj-head>"
        "<mj-body><mj-section><mj-column><mj-text>Hello {{ contact.first_name }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>",
    )
    series = live_series(
        acme,
        [
            {"key": "hello", "type": "send", "template": welcome.pk, "next": "german"},
            {
                "key": "german",
                "type": "condition",
                "events_since_entry": [{"event": "Order Completed"}],
                "yes": "thanks",
                "no": None,
            },
            {"key": "thanks", "type": "send", "template": welcome.pk},
        ],
        name="Welcome drip",
    )
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    log_in(page, user.email)
    page.goto(f"/series/{series.pk}/builder/")
    # The panel comes in by htmx: the rule builder is drawn in it there and then.
    page.locator('.builder-card[data-step="german"] .card-edit').click()
    panel = page.locator("#builder-panel")
    expect(panel.locator(".rule-group")).to_be_visible()
    expect(panel.locator(".rule-preview #segment-live-count")).to_have_text("3")

    panel.get_by_role("button", name="+ Condition").click()
    panel.locator("select[data-path='conditions[0].field']").select_option("country")
    panel.locator("input[data-path='conditions[0].value']").fill("DE")
    expect(panel.locator(".rule-preview #segment-live-count")).to_have_text("2")
    panel.get_by_role("button", name="Save step").click()

    card = page.locator('.builder-card[data-step="german"]')
    expect(card).to_contain_text("Country (ISO code) is DE")
    draft = series.versions.order_by("-number").first()
    assert draft is not None and draft.published_at is None
    german = next(step for step in draft.steps["steps"] if step["key"] == "german")
    assert german["rules"]["conditions"] == [{"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"}]
    # The panel drawn again after the save shows the saved tree in the builder.
    expect(page.locator("#builder-panel select[data-path='conditions[0].field']")).to_have_value("country")

    # The send step: its email as a thumbnail, personalised for a contact of the workspace.
    page.locator('.builder-card[data-step="hello"] .card-edit').click()
    subject = page.locator("#thumb-subject")
    expect(subject).to_have_text(re.compile(r"^Welcome, (Anna|Ben|Cara)$"))
    frame = page.frame_locator("#email-thumb-frame")
    expect(frame.locator("body")).to_contain_text("Hello")
    box = page.locator("#email-thumb-frame").bounding_box()
    assert box is not None and box["width"] <= 320  # a thumbnail, not the email at full size
    page.locator("#id_subject").fill("A gift for {{ contact.first_name }}")
    expect(subject).to_have_text(re.compile(r"^A gift for (Anna|Ben|Cara)$"))
    page.locator("#email-thumb-contact").select_option(label="cara@example.com")
    expect(subject).to_have_text("A gift for Cara")
    expect(frame.locator("body")).to_contain_text("Hello Cara")

    assert problems == []
