"""The starters a newcomer copies first: their images are the project's own static files (no
outside image host for the gallery, the editor or the demo's mail), and the order thank-you is
transactional mail, so it reaches a customer who unsubscribed from marketing."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

from audiences.demo_shop import CATALOGUE, _product
from audiences.models import Suppression, SuppressionReason, email_hash
from campaigns.content import services
from campaigns.content.rendering import email_context, render_email
from campaigns.content.starters import SAMPLE_CONTACT, SAMPLE_EVENTS, SAMPLE_RECOMMENDATIONS, STARTERS
from campaigns.delivery.sender import messages_send_due
from campaigns.models import Message
from esp.models import OutboxMessage, Workspace

pytestmark = pytest.mark.django_db

SOURCES = re.compile(r"""\b(?:src|background)=["']([^"']+)["']""")
URLS = {"unsubscribe_url": "#", "preferences_url": "#", "view_in_browser_url": ""}


def _own_static_file(url: str) -> bool:
    from django.conf import settings

    prefix = f"{settings.PUBLIC_BASE_URL}{settings.STATIC_URL}"
    return url.startswith(prefix) and finders.find(url.removeprefix(prefix)) is not None


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_starter_images_are_our_own_static_files(acme: Workspace, key: str) -> None:
    starter = STARTERS[key]
    template = services.template_copy_starter(workspace=acme, starter_key=key)
    sample = SAMPLE_EVENTS.get(starter.sample_event)
    event = dict(sample.properties) if sample else {}
    context = email_context(workspace=acme, contact=dict(SAMPLE_CONTACT), event=event, urls=URLS)
    context["recommended_products"] = SAMPLE_RECOMMENDATIONS
    html = render_email(template, context).html
    sources = SOURCES.findall(html)
    outside = [url for url in sources if not _own_static_file(url)]
    assert not outside, f"{key} loads from outside the project: {outside}"


def test_every_sample_and_demo_product_image_is_a_static_file() -> None:
    images = [
        product["image_url"] for sample in SAMPLE_EVENTS.values() for product in sample.properties.get("products", [])
    ]
    images += [product["image_url"] for product in SAMPLE_RECOMMENDATIONS]
    images += [_product(sku, "en")["image_url"] for sku in CATALOGUE]
    assert images and all(_own_static_file(url) for url in images), images


def test_order_thank_you_is_transactional_and_reaches_an_unsubscribed_customer(
    acme: Workspace, acme_api: APIClient
) -> None:
    template = services.template_copy_starter(workspace=acme, starter_key="order_thank_you")
    assert template.message_class == "transactional"
    assert services.template_copy_starter(workspace=acme, starter_key="promo").message_class == "marketing"
    Suppression.objects.create(
        workspace=acme, email_hash=email_hash("ana@example.bg"), reason=SuppressionReason.UNSUBSCRIBED
    )
    body = {
        "template": template.pk,
        "contact": {"email": "ana@example.bg"},
        "idempotency_key": "order-1001",
        "data": {"order_id": "1001", "products": [{"name": "Trail shoes", "price": 89.9, "quantity": 1}]},
    }
    answer = acme_api.post("/api/v1/messages", body, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["message_class"] == "transactional"
    messages_send_due()
    assert Message.objects.get(pk=answer.json()["id"]).state == "sent"
    assert OutboxMessage.objects.filter(workspace=acme, to=["ana@example.bg"]).exists()
