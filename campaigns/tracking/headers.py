"""The recipient-facing URLs of a message and the compliance headers that carry them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from campaigns.models import MessageClass, MessageSource
from campaigns.tracking.tokens import message_token

if TYPE_CHECKING:
    from campaigns.models import Message


def message_urls(message: Message, token: str | None = None) -> dict[str, str]:
    """Absolute links for the template context (`unsubscribe_url`, `preferences_url`,
    `view_in_browser_url`), all addressed by the message's token (given when the caller has
    it already)."""
    token = token or message_token(message.pk)
    base = settings.PUBLIC_BASE_URL
    return {
        "unsubscribe_url": f"{base}/e/u/{token}",
        "preferences_url": f"{base}/e/p/{token}",
        "view_in_browser_url": f"{base}/e/v/{token}",
    }


def feedback_id(message: Message) -> str:
    # A campaign's messages share a Feedback-ID; transactional and test sources are unique per
    # message, which Gmail's feedback loop cannot aggregate, so they give only their kind.
    source = MessageSource.parse(message.source)
    campaign = f"{source.kind}-{source.key}" if source.is_campaign and source.key else source.kind
    # Gmail's format: fields separated by colons, the sender's identifier last.
    return f"{campaign}:{message.message_class}:{message.workspace_id}:esp"


def compliance_headers(message: Message, urls: dict[str, str]) -> dict[str, str]:
    """Marketing mail: RFC 2369 List-Unsubscribe with our https URL and RFC 8058 one-click, so
    Gmail and Yahoo show their unsubscribe button and POST to it without cookies. Transactional
    mail carries no unsubscribe headers (a receipt cannot be unsubscribed from)."""
    headers = {"Feedback-ID": feedback_id(message)}
    if message.message_class == MessageClass.MARKETING:
        headers["List-Unsubscribe"] = f"<{urls['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers
