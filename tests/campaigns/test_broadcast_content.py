"""A broadcast's own preheader, tracking switches and UTM parameters, and each A/B variant's
preheader: they reach the sent email (and "view in browser" shows the same links), the test
send carries them too, and bad ones are a 400 naming the field before anything is sent."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from audiences.models import Contact, MailingList, Subscription, SubscriptionStatus
from campaigns.delivery.sender import messages_send_due
from campaigns.models import DeliverySettings, Message, MessageSource
from campaigns.tracking.services import browser_html
from esp.models import OutboxMessage, Workspace
from tests.factories import EmailTemplateFactory

pytestmark = pytest.mark.usefixtures("clock")

SALE_MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    '<mj-text>Hi</mj-text><mj-button href="https://shop.example/sale?src=mail">Shop</mj-button>'
    "</mj-column></mj-section></mj-body></mjml>"
)
PREVIEW = re.compile(r'<div style="display:none;[^"]*">([^<]*)</div>')


@pytest.fixture
def shop(acme: Workspace) -> dict[str, Any]:
    news = MailingList.objects.create(workspace=acme, name="News")
    for email in ("ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"):
        contact = Contact.objects.create(workspace=acme, email=email, first_name=email[:3].title())
        Subscription.objects.create(
            workspace=acme, contact=contact, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED
        )
    DeliverySettings.objects.create(workspace=acme, utm_parameters={"utm_source": "acme", "utm_campaign": "all"})
    return {"news": news, "template": EmailTemplateFactory(workspace=acme, name="Sale", mjml=SALE_MJML)}


def sent_html(email: str) -> str:
    (stored,) = OutboxMessage.objects.filter(to=[email])
    return stored.html_body


def test_preheader_tracking_and_utm_reach_the_sent_email(acme_api: APIClient, shop: dict[str, Any]) -> None:
    made = acme_api.post(
        "/api/v1/broadcasts",
        {
            "name": "Sale", "include_lists": [shop["news"].pk], "template": shop["template"].pk,
            "preheader": "Only until Sunday, {{ contact.first_name }} & co", "track_opens": False,
            "utm_parameters": {"utm_campaign": "spring-sale", "utm_content": "button"},
        },
        format="json",
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (body["preheader"], body["track_opens"], body["track_clicks"]) == (
        "Only until Sunday, {{ contact.first_name }} & co", False, None)  # fmt: skip
    assert acme_api.post(f"/api/v1/broadcasts/{body['id']}/schedule").status_code == 200

    messages_send_due()

    html = sent_html("ann@example.com")
    # The template has no preheader of its own: the broadcast's goes first in the body, escaped.
    assert PREVIEW.search(html).group(1) == "Only until Sunday, Ann &amp; co"  # type: ignore[union-attr]
    assert "/e/o/" not in html  # opens are not tracked for this broadcast
    message = Message.objects.get(source=str(MessageSource.broadcast(body["id"])), to_email="ann@example.com")
    # Clicks are (the workspace's setting); the broadcast's UTM win over the workspace's.
    assert message.links == [
        "https://shop.example/sale?src=mail&utm_source=acme&utm_campaign=spring-sale&utm_content=button"
    ]
    shown = browser_html(message)
    assert shown is not None and "/e/c/" in shown and "Only until Sunday" in shown


def test_the_broadcasts_preheader_replaces_the_templates(
    acme: Workspace, acme_api: APIClient, shop: dict[str, Any]
) -> None:
    template = EmailTemplateFactory(workspace=acme, name="With", mjml=SALE_MJML, preheader="The template's line")
    pk = acme_api.post(
        "/api/v1/broadcasts",
        {"name": "Sale", "include_lists": [shop["news"].pk], "template": template.pk, "preheader": "Ours",
         "track_clicks": False},
        format="json",
    ).json()["id"]  # fmt: skip
    acme_api.post(f"/api/v1/broadcasts/{pk}/schedule")
    messages_send_due()
    html = sent_html("bob@example.com")
    assert [found.group(1) for found in PREVIEW.finditer(html)] == ["Ours"]
    assert "https://shop.example/sale?src=mail" in html and "/e/c/" not in html  # clicks not tracked


def test_each_variant_gets_its_own_preheader(acme_api: APIClient, shop: dict[str, Any]) -> None:
    pk = acme_api.post(
        "/api/v1/broadcasts",
        {"name": "Sale", "include_lists": [shop["news"].pk], "template": shop["template"].pk, "preheader": "Base"},
        format="json",
    ).json()["id"]
    configured = acme_api.put(
        f"/api/v1/broadcasts/{pk}/ab",
        {"variants": [{}, {"preheader": "B's line"}], "test_percent": 90},
        format="json",
    )
    assert configured.status_code == 200, configured.json()
    assert [v["preheader"] for v in configured.json()["variants"]] == ["", "B's line"]
    acme_api.post(f"/api/v1/broadcasts/{pk}/schedule")
    messages_send_due()
    lines = {}
    for message in Message.objects.filter(source=str(MessageSource.broadcast(pk))):
        lines[message.data["variant"]] = PREVIEW.search(sent_html(message.to_email)).group(1)  # type: ignore[union-attr]
    assert lines == {"A": "Base", "B": "B&#x27;s line"}


def test_a_test_send_is_tracked_like_the_broadcast(acme_api: APIClient, shop: dict[str, Any]) -> None:
    pk = acme_api.post(
        "/api/v1/broadcasts",
        {"name": "Sale", "template": shop["template"].pk, "preheader": "Soon", "utm_parameters": {"utm_campaign": "x"}},
        format="json",
    ).json()["id"]
    queued = acme_api.post(f"/api/v1/broadcasts/{pk}/test", {"to": "me@shop.example"}, format="json")
    messages_send_due()
    message = Message.objects.get(pk=queued.json()["message"])
    assert message.state == "sent" and message.links == [
        "https://shop.example/sale?src=mail&utm_source=acme&utm_campaign=x"
    ]
    assert "Soon" in sent_html("me@shop.example")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "{% if contact.first_name %}Hi"),
        ("preheader", "{{ contact.first_name|nosuchfilter }}"),
        ("preheader", "x" * 256),
        ("utm_parameters", {"campaign": "x"}),
        ("utm_parameters", {"utm_campaign": ""}),
        ("track_opens", "sometimes"),
    ],
)
def test_bad_content_is_a_400_naming_the_field(
    acme_api: APIClient, shop: dict[str, Any], field: str, value: Any
) -> None:
    refused = acme_api.post("/api/v1/broadcasts", {"name": "Sale", field: value}, format="json")
    assert refused.status_code == 400 and field in refused.json()["error"]["fields"], refused.json()


def test_a_bad_variant_preheader_is_refused(acme_api: APIClient, shop: dict[str, Any]) -> None:
    pk = acme_api.post("/api/v1/broadcasts", {"name": "Sale"}, format="json").json()["id"]
    refused = acme_api.put(f"/api/v1/broadcasts/{pk}/ab", {"variants": [{}, {"preheader": "{% for %}"}]}, format="json")
    assert refused.status_code == 400 and "variants.B" in refused.json()["error"]["fields"], refused.json()
