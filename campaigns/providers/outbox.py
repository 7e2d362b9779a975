"""The outbox: messages are stored (esp.models.OutboxMessage) and shown on the Outbox page,
never delivered. The default way out, so a local run needs no mail server."""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError

from campaigns.models import ProviderKind
from campaigns.providers.base import (
    PermanentSendError,
    PreparedEmail,
    TransientSendError,
    Transport,
    ensure_message_id,
    require_recipients,
)
from esp.mail import WORKSPACE_HEADER, OutboxBackend
from esp.models import OutboxMessage


class OutboxTransport(Transport):
    """Stores through esp.mail.OutboxBackend (the same rows as the platform's own mail) under
    the workspace, and answers with the message's Message-ID as the provider id."""

    kind = ProviderKind.OUTBOX

    def __init__(self, workspace_id: int | None = None) -> None:
        self.workspace_id = workspace_id
        self.backend = OutboxBackend()

    def send(self, email: EmailMultiAlternatives) -> str:
        require_recipients(email)
        message_id = ensure_message_id(email)
        # The marker header tells the backend which workspace owns the row; it is removed
        # again so the caller's message object is left as it came (bar the Message-ID).
        added = self.workspace_id is not None and WORKSPACE_HEADER not in email.extra_headers
        if added:
            email.extra_headers[WORKSPACE_HEADER] = str(self.workspace_id)
        try:
            self.backend.send_messages([email])
        except DatabaseError as error:
            raise TransientSendError(f"The outbox could not store the message: {error}") from error
        finally:
            if added:
                email.extra_headers.pop(WORKSPACE_HEADER, None)
        return message_id

    def send_prepared(self, prepared: PreparedEmail, following: PreparedEmail | None = None) -> str:
        """The row OutboxBackend would store for prepared.email(), made from the parts."""
        recipients = prepared.recipients()
        if not recipients:
            raise PermanentSendError("The message has no recipients.")
        row = OutboxMessage(
            workspace_id=self.workspace_id,
            from_email=prepared.from_email,
            to=recipients,
            subject=prepared.subject,
            text_body=prepared.text,
            html_body=prepared.html,
            headers=dict(prepared.headers),
        )
        try:
            OutboxMessage.objects.bulk_create([row])
        except DatabaseError as error:
            raise TransientSendError(f"The outbox could not store the message: {error}") from error
        return prepared.message_id
