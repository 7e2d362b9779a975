"""Real webhook payloads of the ESPs, shaped as their documentation shows them (Amazon SES
notifications inside SNS envelopes, Mailgun's signed JSON webhooks, Postmark's webhooks), and
the helpers the webhook tests share. The message ids in the files are what the tests give their
Message rows as provider_message_id; Mailgun signatures and SNS signatures are computed by the
tests, the way the ESPs compute them."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

from django.test import Client

from audiences.models import Contact, Event, PendingEvents, Suppression
from campaigns.crypto import encrypt_json
from campaigns.models import EmailTemplate, Message, MessageEvent, Provider
from esp.models import Workspace

HERE = Path(__file__).parent

SES_MESSAGE_ID = "0102018e0a1b2c3d-5f6e7d8c-1a2b-4c3d-9e8f-0a1b2c3d4e5f-000000"
MAILGUN_MESSAGE_ID = "<20260302090000.1.5E3F2A1B0C9D8E7F@mg.acme.example>"
POSTMARK_MESSAGE_ID = "d2c9f0e1-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
BASIC_AUTH = "esp-hooks:s3cret-Pa55"


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text())


def make_provider(workspace: Workspace, kind: str, **credentials: Any) -> Provider:
    return Provider.objects.create(
        workspace=workspace,
        name=f"{kind} {secrets.token_hex(3)}",
        kind=kind,
        credentials=encrypt_json(credentials),
        webhook_token=secrets.token_hex(16),
    )


def make_message(
    workspace: Workspace,
    *,
    provider: Provider | None,
    provider_message_id: str,
    email: str = "jane@example.com",
    source: str = "broadcast:1",
    **fields: Any,
) -> Message:
    contact, _ = Contact.objects.get_or_create(workspace=workspace, email=email)
    template, _ = EmailTemplate.objects.get_or_create(
        workspace=workspace, name="Spring sale", defaults={"subject": "Spring sale", "mjml": "<mjml></mjml>"}
    )
    return Message.objects.create(
        workspace=workspace,
        contact=contact,
        source=source,
        template=template,
        provider=provider,
        to_email=email,
        state="sent",
        provider_message_id=provider_message_id,
        **fields,
    )


def url(provider: Provider, kind: str | None = None) -> str:
    return f"/webhooks/{provider.webhook_token}/{kind or provider.kind}/tracking/"


def basic_auth(credentials: str = BASIC_AUTH) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def post_json(provider: Provider, payload: Any, *, auth: str | None = BASIC_AUTH, **extra: Any) -> Any:
    headers = basic_auth(auth) if auth else {}
    return Client().post(url(provider), data=json.dumps(payload), content_type="application/json", **headers, **extra)


def counts(workspace: Workspace) -> dict[str, int]:
    """Everything a webhook may add to a workspace, counted."""
    return {
        "message_events": MessageEvent.objects.filter(workspace=workspace).count(),
        "events": Event.objects.filter(workspace=workspace).count(),
        "pending": PendingEvents.objects.filter(workspace=workspace).count(),
        "suppressions": Suppression.objects.filter(workspace=workspace).count(),
    }


def message_state(message: Message) -> dict[str, Any]:
    message.refresh_from_db()
    return {
        field: getattr(message, field)
        for field in (
            "state",
            "reason",
            "delivery_status",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "bounced_at",
            "complained_at",
            "unsubscribed_at",
        )
    }
