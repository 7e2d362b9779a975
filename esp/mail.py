"""Mail transport for account and workspace mail, and the `outbox` that stores it.

The outbox is the default transport: messages land in the database and are shown on the
Outbox page, so a local run never needs an SMTP server. Campaign mail goes through
the per-workspace providers; this module covers the platform's own mail (password resets,
invitations, confirmations).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import render_to_string

from esp.models import OutboxMessage, User, Workspace

# The recipient endpoints under /e/ (esp/urls.py): the open pixel, and the click, unsubscribe,
# preferences and view-in-browser links. Any host: the message may have been sent while the
# site ran under another address.
_PIXEL = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["']?https?://[^\s"'>]+/e/o/[^\s"'>]+[^>]*>""", re.IGNORECASE)
_RECIPIENT_HREF = re.compile(r"""(\bhref\s*=\s*)(["']?)https?://[^\s"'>]+/e/[cupv]/[^\s"'>]+\2""", re.IGNORECASE)


def public_static_url(path: str) -> str:
    """An absolute URL of one of the project's own static files, for mail: starter and demo
    images are served by this site, so nothing in a page or an email needs an outside host.
    The unhashed name: a stored email must still find it after the next deploy."""
    return f"{settings.PUBLIC_BASE_URL}{settings.STATIC_URL.rstrip('/')}/{path}"


def preview_without_tracking(html: str) -> str:
    """A stored email as a member may look at it inside the app: without its open pixel (the
    preview would load it and count an open) and with its tracked and recipient links pointing
    nowhere (a click would count, or unsubscribe the recipient)."""
    html = _PIXEL.sub("", html)
    return _RECIPIENT_HREF.sub(r'\1"#"', html)


# Carries the owning workspace from the sender to the outbox; never leaves the process.
WORKSPACE_HEADER = "X-ESP-Workspace"


class OutboxBackend(BaseEmailBackend):
    """Django email backend that stores each message as an OutboxMessage row."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        rows = [self._to_row(message) for message in email_messages if message.recipients()]
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)

    @staticmethod
    def _to_row(message: EmailMessage) -> OutboxMessage:
        headers = dict(message.extra_headers)
        workspace_id = headers.pop(WORKSPACE_HEADER, None)
        html_body = ""
        for content, mimetype in getattr(message, "alternatives", []):
            if mimetype == "text/html":
                html_body = str(content)
        text_body = str(message.body)
        if message.content_subtype == "html":
            html_body, text_body = text_body, ""
        return OutboxMessage(
            workspace_id=int(workspace_id) if workspace_id else None,
            from_email=message.from_email,
            to=list(message.recipients()),
            subject=str(message.subject),
            text_body=text_body,
            html_body=html_body,
            headers=headers,
        )


def account_mail_language(*, email: str = "", user: User | None = None, workspace: Workspace | None = None) -> str:
    """The one rule for the service's own mail (invitations, double opt-in, password resets):
    the recipient's own language when the service knows it (their account's language, looked
    up by address when no user is given), else the language of emails of the workspace the
    mail is about, else the site's default. Never the language of whoever caused the mail."""
    if user is None and email:
        user = User.objects.filter(email__iexact=email).only("language").first()
    if user is not None and user.language in dict(settings.LANGUAGES):
        return user.language
    if workspace is not None and workspace.language in dict(settings.LANGUAGES):
        return workspace.language
    return settings.LANGUAGE_CODE


def send_templated_mail(
    *,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    workspace: Workspace | None = None,
) -> None:
    """Render `<template>.txt` and `<template>.html` and send them through the configured
    transport; the workspace (if any) owns the message in the outbox."""
    headers = {WORKSPACE_HEADER: str(workspace.pk)} if workspace else {}
    from_email = settings.DEFAULT_FROM_EMAIL
    if workspace and workspace.default_from_email:
        from_email = f"{workspace.default_from_name or workspace.name} <{workspace.default_from_email}>"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        from_email=from_email,
        to=[to],
        headers=headers,
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    if settings.EMAIL_BACKEND != "esp.mail.OutboxBackend":
        # The marker header is for the outbox only; real transports must not see it.
        message.extra_headers.pop(WORKSPACE_HEADER, None)
    message.send()
