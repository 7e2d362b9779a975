"""The content pages: templates list, starter gallery, the editor with its live preview and
errors, send test to me, the layout page; roles and workspace isolation."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from audiences.models import Contact
from audiences.services import suppression_add
from campaigns.content import services
from campaigns.models import EmailTemplate, Layout, Message
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import EventFactory, member

pytestmark = pytest.mark.django_db

BODY = """<mjml>
<mj-body>
<mj-section><mj-column>
<mj-text>Hi {{ contact.first_name|default:'there' }}, {% for p in event.products %}[{{ p.name }}]{% endfor %}</mj-text>
</mj-column></mj-section>
</mj-body>
</mjml>"""


def make_template(workspace: Workspace, name: str = "Newsletter") -> EmailTemplate:
    return services.template_create(
        workspace=workspace,
        data={"name": name, "subject": "Hello {{ contact.first_name|default:'you' }}", "mjml": BODY},
    )


def form_data(template: EmailTemplate, **changes: str) -> dict[str, str]:
    data = {
        "name": template.name,
        "description": template.description,
        "message_class": template.message_class,
        "subject": template.subject,
        "preheader": template.preheader,
        "mjml": template.mjml,
        "text_body": template.text_body,
        "use_layout": "on",
    }
    data.update(changes)
    return data


def srcdoc(content: str) -> str:
    match = re.search(r'<iframe class="mail-preview" id="preview-frame" sandbox="" [^>]*srcdoc="([^"]*)"', content)
    assert match, content
    return html.unescape(match.group(1))


def test_list_and_gallery(acme: Workspace, acme_client: Client, globex: Workspace) -> None:
    make_template(acme, "Acme news")
    make_template(globex, "Globex news")
    page = acme_client.get("/content/templates/").content.decode()
    assert "Acme news" in page and "Globex news" not in page
    gallery = acme_client.get("/content/templates/new/").content.decode()
    assert gallery.count('<iframe sandbox=""') == 8
    assert "Abandoned cart" in gallery and "allow-scripts" not in gallery


def test_new_from_starter_and_blank(acme: Workspace, acme_client: Client) -> None:
    response = acme_client.post("/content/templates/new/", {"starter": "abandoned_cart", "name": ""})
    template = EmailTemplate.objects.get(workspace=acme, starter="abandoned_cart")
    assert response.status_code == 302 and response["Location"] == f"/content/templates/{template.pk}/"
    acme_client.post("/content/templates/new/", {"starter": "blank", "name": "My email"})
    blank = EmailTemplate.objects.get(workspace=acme, name="My email")
    assert blank.compiled_html
    assert acme_client.post("/content/templates/new/", {"starter": "nope"}).status_code == 302
    assert EmailTemplate.objects.filter(workspace=acme).count() == 2


def test_editor_preview_renders_for_a_sample_contact_and_event(acme: Workspace, acme_client: Client) -> None:
    template = make_template(acme)
    anna = Contact.objects.create(workspace=acme, email="anna@example.com", first_name="Анна")
    event = EventFactory(
        contact=anna, name="Checkout Started", properties={"products": [{"name": "Teapot <big>", "price": 20}]}
    )
    editor = acme_client.get(f"/content/templates/{template.pk}/").content.decode()
    assert f'value="{anna.pk}"' in editor  # the sample-contact dropdown
    assert 'hx-post="/content/preview/"' in editor

    data = form_data(template, sample_contact=str(anna.pk), sample_event=f"event:{event.pk}")
    response = acme_client.post("/content/preview/", data)
    assert response.status_code == 200
    content = response.content.decode()
    assert '<dd id="preview-subject">Hello Анна</dd>' in content
    doc = srcdoc(content)
    assert "Hi Анна, [Teapot &lt;big&gt;]" in doc
    assert "1 Market Street, Springfield" in doc  # the layout's footer
    assert "allow-scripts" not in content

    # The event list follows the chosen contact.
    options = acme_client.get(f"/content/preview/events/?sample_contact={anna.pk}").content.decode()
    assert f'value="event:{event.pk}"' in options and "Checkout Started" in options

    # Without a contact: the built-in sample person and a built-in sample cart.
    sample = acme_client.post("/content/preview/", form_data(template, sample_event="sample:cart")).content.decode()
    assert "Hi Alex, [Trail running shoes][Merino running socks (3 pairs)]" in srcdoc(sample)


def test_preview_shows_problems_with_lines_before_saving(acme: Workspace, acme_client: Client) -> None:
    template = make_template(acme)
    broken = BODY.replace("<mj-text>", "<mj-text>\n{% load static %}", 1)
    content = acme_client.post(
        "/content/preview/", form_data(template, mjml=broken, subject="Hi {{ x|nope }}")
    ).content.decode()
    assert "<iframe" not in content
    assert 'data-part="mjml" data-line="5"' in content and "{% load %} is not allowed" in html.unescape(content)
    assert 'data-part="subject" data-line="1"' in content and "nope" in content


def test_saving_an_invalid_template_is_refused_with_the_errors(acme: Workspace, acme_client: Client) -> None:
    template = make_template(acme)
    broken = BODY.replace("<mj-text>", "<mj-txt>", 1)
    response = acme_client.post(f"/content/templates/{template.pk}/", form_data(template, mjml=broken))
    assert response.status_code == 400
    content = html.unescape(response.content.decode())
    assert "line 4: Unknown MJML element <mj-txt>." in content
    template.refresh_from_db()
    assert template.mjml == BODY and template.version == 1

    response = acme_client.post(
        f"/content/templates/{template.pk}/", form_data(template, subject="Hi {{ contact.first_name }}!")
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.subject == "Hi {{ contact.first_name }}!" and template.version == 2


def test_crlf_from_browsers_keeps_line_numbers(acme: Workspace, acme_client: Client) -> None:
    template = make_template(acme)
    response = acme_client.post(
        f"/content/templates/{template.pk}/", form_data(template, mjml=BODY.replace("\n", "\r\n"))
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert "\r" not in template.mjml and template.version == 1  # nothing changed but the line ends


def test_viewer_looks_and_previews_but_cannot_change(acme: Workspace) -> None:
    template = make_template(acme)
    viewer = logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))
    page = viewer.get(f"/content/templates/{template.pk}/").content.decode()
    assert "readonly" in page and ">Save<" not in page
    # The viewer's preview is of the saved version, for any sample contact and event.
    assert f'hx-get="/content/templates/{template.pk}/preview/"' in page
    anna = Contact.objects.create(workspace=acme, email="anna@example.com", first_name="Anna")
    shown = viewer.get(f"/content/templates/{template.pk}/preview/?sample_contact={anna.pk}&sample_event=sample:cart")
    assert shown.status_code == 200
    assert "Hi Anna, [Trail running shoes]" in srcdoc(shown.content.decode())
    assert viewer.post("/content/preview/", form_data(template)).status_code == 403
    assert viewer.post(f"/content/templates/{template.pk}/", form_data(template, name="X")).status_code == 403
    assert viewer.post("/content/templates/new/", {"starter": "welcome"}).status_code == 403
    assert viewer.post("/content/layout/", {"header_mjml": "", "footer_mjml": ""}).status_code == 403
    assert viewer.post(f"/content/templates/{template.pk}/delete/").status_code == 403


def test_send_test_to_me_saves_the_edit_first(acme: Workspace, acme_client: Client, acme_owner: object) -> None:
    template = make_template(acme)
    anna = Contact.objects.create(workspace=acme, email="anna@example.com", first_name="Anna")
    sample = {"sample_contact": str(anna.pk), "sample_event": "sample:cart"}
    edited = form_data(template, subject="Edited {{ contact.first_name }}")
    response = acme_client.post(f"/content/templates/{template.pk}/test/", {**edited, **sample}, follow=True)
    assert response.status_code == 200
    template.refresh_from_db()
    # The unsaved edit was saved, and its version is the one tested.
    assert (template.version, template.subject) == (2, "Edited {{ contact.first_name }}")
    message = Message.objects.get(workspace=acme, source__startswith="test:")
    assert message.to_email == "owner@acme.test" and message.template_id == template.pk
    assert message.data["contact"]["first_name"] == "Anna"
    assert message.data["event"]["products"][0]["name"] == "Trail running shoes"
    page = response.content.decode()
    assert "Saved (version 2); a test is on its way to owner@acme.test" in page
    assert f'<a href="/messages/{message.pk}/">follow it in the send log</a>' in page

    # A broken edit is neither saved nor sent: the editor shows why.
    broken = acme_client.post(
        f"/content/templates/{template.pk}/test/", {**form_data(template, mjml="<mjml><mj-txt>"), **sample}
    )
    assert broken.status_code == 400 and "Not saved" in broken.content.decode()
    assert Message.objects.filter(source__startswith="test:").count() == 1


def test_send_test_to_a_suppressed_address_says_so(acme: Workspace, acme_client: Client, acme_owner: object) -> None:
    template = make_template(acme)
    suppression_add(workspace=acme, email="owner@acme.test", reason="hard_bounce")
    page = acme_client.post(f"/content/templates/{template.pk}/test/", form_data(template), follow=True)
    assert "owner@acme.test is on the suppression list (Hard bounce)" in page.content.decode()
    assert not Message.objects.filter(source__startswith="test:").exists()


def test_layout_page(acme: Workspace, acme_client: Client) -> None:
    page = acme_client.get("/content/layout/").content.decode()
    assert "{{ unsubscribe_url }}" in html.unescape(page)  # the default footer, ready to edit
    response = acme_client.post(
        "/content/layout/", {"header_mjml": "<mj-section>", "footer_mjml": "<mj-section></mj-section>"}
    )
    assert response.status_code == 400
    content = html.unescape(response.content.decode())
    assert '<li data-part="header" data-line="1">Header, <a href="#" class="goto-line"' in content
    assert "</mj-body> found where <mj-section> (opened on line 1) should be closed." in content
    assert "The footer needs the unsubscribe link: {{ unsubscribe_url }}." in content
    assert not Layout.objects.filter(workspace=acme).exists()
    footer = (
        '<mj-section><mj-column><mj-text>Bye <a href="{{ unsubscribe_url }}">stop</a> '
        "{{ workspace.postal_address }}</mj-text></mj-column></mj-section>"
    )
    assert acme_client.post("/content/layout/", {"header_mjml": "", "footer_mjml": footer}).status_code == 302
    assert Layout.objects.get(workspace=acme).footer_mjml == footer


def test_delete(acme: Workspace, acme_client: Client) -> None:
    template = make_template(acme)
    assert acme_client.post(f"/content/templates/{template.pk}/delete/").status_code == 302
    assert not EmailTemplate.objects.filter(pk=template.pk).exists()


def test_another_workspaces_template_is_a_404(acme_client: Client, globex: Workspace) -> None:
    template = make_template(globex)
    for url in (f"/content/templates/{template.pk}/",):
        assert acme_client.get(url).status_code == 404
    for url in ("", "test/", "delete/"):
        assert acme_client.post(f"/content/templates/{template.pk}/{url}", form_data(template)).status_code == 404
    assert EmailTemplate.objects.filter(pk=template.pk, name="Newsletter").exists()
    # Another workspace's contact or event cannot be a preview's sample.
    gina = Contact.objects.create(workspace=globex, email="gina@example.com", first_name="Gina")
    event = EventFactory(contact=gina, name="Checkout Started", properties={"products": [{"name": "Secret"}]})
    content = acme_client.post(
        "/content/preview/", form_data(template, sample_contact=str(gina.pk), sample_event=f"event:{event.pk}")
    ).content.decode()
    assert "Gina" not in content and "Secret" not in content and "Hello Alex" in content


def test_the_editor_routes_a_template_through_the_workspaces_own_sender(
    acme: Workspace, globex: Workspace, acme_client: Client
) -> None:
    from campaigns.providers.services import sender_create

    ours = sender_create(workspace=acme, from_name="Orders", from_email="orders@acme.test")
    theirs = sender_create(workspace=globex, from_name="Globex", from_email="hi@globex.test")
    template = make_template(acme)
    page = acme_client.get(f"/content/templates/{template.pk}/").content.decode()
    assert "orders@acme.test" in page and "hi@globex.test" not in page
    saved = acme_client.post(f"/content/templates/{template.pk}/", form_data(template, sender=str(ours.pk)))
    assert saved.status_code == 302
    template.refresh_from_db()
    assert (template.sender_id, template.version) == (ours.pk, 1)  # routing is not content: no new version
    refused = acme_client.post(f"/content/templates/{template.pk}/", form_data(template, sender=str(theirs.pk)))
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    template.refresh_from_db()
    assert template.sender_id == ours.pk
