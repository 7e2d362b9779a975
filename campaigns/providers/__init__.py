"""The ways out for a workspace's mail: the outbox, SMTP and the anymail ESPs, each an adapter
behind one small interface (campaigns.providers.base.Transport).

    transport = transport_for(message.provider, workspace_id=message.workspace_id)
    transport.open()
    try:
        for email in emails:
            rate_limit_wait(provider.pk, provider.rate_limit)
            provider_message_id = transport.send(email)  # TransientSendError / PermanentSendError
    finally:
        transport.close()
"""

from __future__ import annotations

from campaigns.providers.base import PermanentSendError, SendError, TransientSendError, Transport
from campaigns.providers.ratelimit import rate_limit_wait
from campaigns.providers.registry import (
    KINDS,
    CredentialField,
    KindSpec,
    default_provider,
    default_sender,
    kind_spec,
    provider_webhook_credentials,
    sender_from_header,
    transport_for,
    webhook_url,
)

__all__ = [
    "KINDS",
    "CredentialField",
    "KindSpec",
    "PermanentSendError",
    "SendError",
    "TransientSendError",
    "Transport",
    "default_provider",
    "default_sender",
    "kind_spec",
    "provider_webhook_credentials",
    "rate_limit_wait",
    "sender_from_header",
    "transport_for",
    "webhook_url",
]
