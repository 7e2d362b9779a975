"""The email editor in Chromium: the live preview follows each edit (debounced) inside a
sandboxed iframe, for the chosen sample contact; an error is shown with its line before saving
and jumps to it; the mobile toggle narrows the preview; saving keeps the edit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from audiences.models import Contact
from campaigns.content import services
from campaigns.models import EmailTemplate, Message
from esp.models import Role
from tests.browser.test_flows import log_in
from tests.factories import WorkspaceFactory, member

pytestmark = pytest.mark.browser

MJML = """<mjml>
<mj-body>
<mj-section><mj-column>
<mj-text>Hello {{ contact.first_name|default:'there' }}, welcome!</mj-text>
</mj-column></mj-section>
</mj-body>
</mjml>"""


def test_live_preview_errors_and_save(page: Page) -> None:
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    user = member(workspace, Role.MARKETER, email="marketer@acme.test")
    Contact.objects.create(workspace=workspace, email="zoe@example.com", first_name="Zoé")
    template = services.template_create(
        workspace=workspace,
        data={"name": "Welcome", "subject": "Hi {{ contact.first_name|default:'you' }}", "mjml": MJML},
    )

    log_in(page, user.email)
    page.goto(f"/content/templates/{template.pk}/")
    frame = page.frame_locator("#preview-frame")
    expect(frame.locator("body")).to_contain_text("Hello Alex, welcome!")  # the built-in sample person
    expect(page.locator("#preview-subject")).to_have_text("Hi Alex")
    expect(page.locator("#preview-frame")).to_have_attribute("sandbox", "")

    # A real contact of the workspace as the sample.
    page.locator("#sample-contact").select_option(label="zoe@example.com · Zoé")
    expect(frame.locator("body")).to_contain_text("Hello Zoé, welcome!")

    # Typing updates the preview.
    editor = page.locator("#id_mjml")
    editor.fill(MJML.replace("welcome!", "good to see you!"))
    expect(frame.locator("body")).to_contain_text("Hello Zoé, good to see you!")

    # A mistake is shown with its line before saving; its link selects that line.
    editor.fill(MJML.replace("<mj-text>", "<mj-txt>", 1))
    problem = page.locator("#preview-problems li").first
    expect(problem).to_contain_text("Unknown MJML element <mj-txt>")
    expect(problem).to_have_attribute("data-line", "4")
    expect(page.locator(".code-gutter .bad-line")).to_have_text("4")
    problem.locator("a.goto-line").click()
    selected = page.evaluate(
        "() => { const a = document.querySelector('#id_mjml');"
        " return a.value.slice(a.selectionStart, a.selectionEnd); }"
    )
    assert selected.startswith("<mj-txt>")

    # Saving the broken version is refused and shows the same problem.
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#saved-problems")).to_contain_text("line 4")
    assert EmailTemplate.objects.get(pk=template.pk).version == 1

    # Fixed, the mobile width narrows the preview, and the save makes version 2.
    page.locator("#id_mjml").fill(MJML.replace("welcome!", "welcome back!"))
    expect(page.frame_locator("#preview-frame").locator("body")).to_contain_text("welcome back!")
    page.get_by_role("button", name="Mobile").click()
    expect(page.locator("#preview-frame")).to_have_css("width", "375px")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash")).to_contain_text(re.compile("version 2"))
    assert "welcome back!" in EmailTemplate.objects.get(pk=template.pk).mjml


def test_plain_text_part_is_copied_as_a_template_not_as_the_sample(page: Page) -> None:
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    user = member(workspace, Role.MARKETER, email="marketer@acme.test")
    template = services.template_create(workspace=workspace, data={"name": "Welcome", "subject": "Hi", "mjml": MJML})

    log_in(page, user.email)
    page.goto(f"/content/templates/{template.pk}/")
    page.get_by_text("Plain-text part", exact=True).click()
    expect(page.locator("#preview-text")).to_contain_text("Hello Alex, welcome!")  # the sample's rendering
    page.get_by_role("button", name="Edit this text as the plain-text part").click()
    text_body = page.locator("#id_text_body")
    # Every recipient gets their own name and their own unsubscribe link, not the sample's.
    expect(text_body).to_have_value(re.compile(r"Hello \{\{ contact\.first_name\|default:'there' \}\}, welcome!"))
    expect(text_body).to_have_value(re.compile(r"\{\{ unsubscribe_url \}\}"))
    # The test button saves the edit first: the test is of what the preview shows.
    page.get_by_role("button", name=re.compile("Save and send a test")).click()
    expect(page.locator(".flash")).to_contain_text("Saved (version 2); a test is on its way to marketer@acme.test")
    expect(page.get_by_role("link", name="follow it in the send log")).to_be_visible()
    # Personalised for the preview's built-in person, as the preview showed it.
    assert Message.objects.get(source__startswith="test:").data["contact"]["first_name"] == "Alex"
    saved = EmailTemplate.objects.get(pk=template.pk).text_body
    assert "{{ contact.first_name|default:'there' }}" in saved and "Alex" not in saved
