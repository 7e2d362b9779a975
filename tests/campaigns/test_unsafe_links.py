"""Links written from personalisation data (`<a href="{{ event.url }}">`) keep safe schemes
only (http, https, mailto, tel): javascript:, vbscript:, data: and their disguises become "#"
in the sent email — tracked or not — and in the editor's preview."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from audiences.models import Contact
from campaigns.content import services
from campaigns.content.rendering import contact_as_dict, email_context, render_email
from campaigns.delivery.composer import compose
from campaigns.models import DeliverySettings, EmailTemplate, Message
from campaigns.tracking.links import link_is_safe, safe_links
from esp.models import Workspace

pytestmark = pytest.mark.django_db

BODY = """<mjml><mj-body><mj-section><mj-column>
<mj-text><a href="{{ event.url }}">your item</a> <a href="https://shop.test/ok">shop</a>
<a href="mailto:help@shop.test">mail us</a> <a href="tel:+3592000">call</a> <a href="#top">top</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"""

ATTACKS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "\x01javascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "javascript&colon;alert(1)",  # an entity the browser decodes
]


@pytest.mark.parametrize("url", ATTACKS)
def test_unsafe_schemes_are_recognised(url: str) -> None:
    assert not link_is_safe(html.escape(url) if "&" not in url else url)


@pytest.mark.parametrize(
    "url", ["https://shop.test/x?a=1&amp;b=2", "http://x.test", "mailto:a@b.test", "tel:+1", "#top", "/relative", ""]
)
def test_safe_links_stay(url: str) -> None:
    assert link_is_safe(url)
    assert safe_links(f'<a class="b" href="{url}">x</a>') == f'<a class="b" href="{url}">x</a>'


def test_only_the_href_changes() -> None:
    assert safe_links("<a title='javascript:' href='javascript:x()' style=\"c\">x</a>") == (
        '<a title=\'javascript:\' href="#" style="c">x</a>'
    )


def _template(workspace: Workspace) -> EmailTemplate:
    return services.template_create(
        workspace=workspace,
        data={"name": "Item", "subject": "Your item", "mjml": BODY, "message_class": "transactional"},
    )


def _hrefs(markup: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', markup)


@pytest.mark.parametrize("url", ATTACKS)
@pytest.mark.parametrize("track_clicks", [True, False])
def test_the_sent_email_gets_no_unsafe_link(acme: Workspace, url: str, track_clicks: bool) -> None:
    template = _template(acme)
    contact = Contact.objects.create(workspace=acme, email="anna@example.com")
    message = Message.objects.create(
        workspace=acme, contact=contact, source="api:1", to_email=contact.email, message_class="transactional"
    )
    delivery = DeliverySettings(workspace=acme, track_clicks=track_clicks, track_opens=False)
    composed = compose(
        message,
        workspace=acme,
        template=template,
        contact=contact_as_dict(contact),
        event={"url": url},
        delivery_settings=delivery,
        sender=None,
        to_email=contact.email,
    )
    markup = composed.prepared.email().alternatives[0][0]
    hrefs = _hrefs(str(markup))
    # (An entity in the data is escaped by the template, so the browser never decodes it into
    # a scheme: that href stays, harmless; the literal one is refused by the first test.)
    assert hrefs[0] == "#" or ("&amp;" in hrefs[0] and link_is_safe(hrefs[0]))
    assert all(link_is_safe(href) for href in hrefs)
    assert all(link.startswith("https://") for link in composed.links)  # nothing unsafe stored to redirect to
    if track_clicks:
        assert "/e/c/" in hrefs[1]
    else:
        assert hrefs[1:5] == ["https://shop.test/ok", "mailto:help@shop.test", "tel:+3592000", "#top"]


def test_the_preview_gets_no_unsafe_link(acme: Workspace, acme_client: Client) -> None:
    template = _template(acme)
    rendered = render_email(
        template, email_context(workspace=acme, contact={}, event={"url": "javascript:alert(1)"}, urls={})
    )
    assert _hrefs(rendered.html)[0] == "#"
    data = {
        "name": template.name,
        "message_class": template.message_class,
        "subject": template.subject,
        "mjml": BODY.replace("{{ event.url }}", "javascript:alert(1)"),
        "use_layout": "on",
    }
    content = acme_client.post("/content/preview/", data).content.decode()
    frame = re.search(r'<iframe class="mail-preview" id="preview-frame" sandbox="" [^>]*srcdoc="([^"]*)"', content)
    assert frame is not None
    assert _hrefs(html.unescape(frame.group(1)))[0] == "#"
