"""The provider kinds, what each needs to know, and how a Provider row becomes a Transport.

Each kind declares its credential fields (label, secret or not, type) — they drive the settings
form and the validation — and the fields its webhooks are checked with. All of them are stored
together, encrypted, in Provider.credentials; secrets are write-only in the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from campaigns import crypto
from campaigns.models import Provider, ProviderKind, SenderIdentity
from campaigns.providers.anymail_esp import AnymailTransport
from campaigns.providers.base import PermanentSendError, Transport
from campaigns.providers.outbox import OutboxTransport
from campaigns.providers.smtp import DEFAULT_PORT, DEFAULT_TIMEOUT, SmtpTransport
from esp.models import Workspace

FieldType = Literal["text", "integer", "boolean", "url", "textarea"]


@dataclass(frozen=True)
class CredentialField:
    key: str
    label: str | Promise
    secret: bool = False
    required: bool = True
    type: FieldType = "text"
    default: Any = None
    help_text: str | Promise = ""


@dataclass(frozen=True)
class KindSpec:
    kind: str
    label: str | Promise
    credential_fields: tuple[CredentialField, ...] = ()
    webhook_fields: tuple[CredentialField, ...] = ()
    # anymail's backend, for the ESP kinds.
    backend: str = ""
    # Stored credentials -> the anymail backend's init kwargs (default: the non-empty values as they are).
    backend_options: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    help_text: str | Promise = ""

    @property
    def fields(self) -> tuple[CredentialField, ...]:
        return self.credential_fields + self.webhook_fields

    @property
    def has_webhooks(self) -> bool:
        return bool(self.backend)


API_KEY = CredentialField("api_key", _("API key"), secret=True)

# Every ESP's webhooks may be protected by HTTP basic auth (anymail's WEBHOOK_SECRET); the
# credentials go into the URL pasted into the ESP's console: https://user:password@host/...
WEBHOOK_SECRET = CredentialField(
    "webhook_secret",
    _("Webhook basic-auth credentials"),
    secret=True,
    required=False,
    help_text=_(
        "user:password that the ESP sends with every webhook call. Left empty on a new provider, "
        "a random one is generated and shown once."
    ),
)


def _ses_options(credentials: dict[str, Any]) -> dict[str, Any]:
    session = {
        key: credentials[key]
        for key in ("aws_access_key_id", "aws_secret_access_key", "region_name")
        if credentials.get(key)
    }
    options: dict[str, Any] = {"session_params": session}
    if credentials.get("configuration_set_name"):
        options["configuration_set_name"] = credentials["configuration_set_name"]
    return options


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            ProviderKind.OUTBOX,
            ProviderKind.OUTBOX.label,
            help_text=_("Messages are stored and shown on the Outbox page, never delivered."),
        ),
        KindSpec(
            ProviderKind.SMTP,
            "SMTP",
            credential_fields=(
                CredentialField("host", _("Server")),
                CredentialField("port", _("Port"), type="integer", default=DEFAULT_PORT),
                CredentialField("username", _("User name"), required=False),
                CredentialField("password", _("Password"), secret=True, required=False),
                CredentialField(
                    "use_tls",
                    _("STARTTLS"),
                    type="boolean",
                    required=False,
                    default=True,
                    help_text=_("Upgrade the connection with STARTTLS (usually port 587)."),
                ),
                CredentialField(
                    "use_ssl",
                    _("Implicit TLS"),
                    type="boolean",
                    required=False,
                    default=False,
                    help_text=_("Connect over TLS from the start (usually port 465)."),
                ),
                CredentialField("timeout", _("Timeout (seconds)"), type="integer", default=DEFAULT_TIMEOUT),
            ),
            help_text=_("Any SMTP server or relay. One connection is kept open for a whole batch."),
        ),
        KindSpec(
            ProviderKind.SES,
            "Amazon SES",
            credential_fields=(
                CredentialField("region_name", _("Region"), help_text=_("e.g. eu-west-1")),
                CredentialField("aws_access_key_id", _("Access key ID")),
                CredentialField("aws_secret_access_key", _("Secret access key"), secret=True),
                CredentialField(
                    "configuration_set_name",
                    _("Configuration set"),
                    required=False,
                    help_text=_("The SES configuration set that publishes events to SNS."),
                ),
            ),
            webhook_fields=(WEBHOOK_SECRET,),
            backend="anymail.backends.amazon_ses.EmailBackend",
            backend_options=_ses_options,
            help_text=_("Sends through the SES v2 API (needs the boto3 package); events arrive through SNS."),
        ),
        KindSpec(
            ProviderKind.MAILGUN,
            "Mailgun",
            credential_fields=(
                API_KEY,
                CredentialField(
                    "sender_domain",
                    _("Sending domain"),
                    required=False,
                    help_text=_("Empty: the domain of each message's From address."),
                ),
                CredentialField(
                    "api_url",
                    _("API URL"),
                    type="url",
                    required=False,
                    help_text=_("For the EU region: https://api.eu.mailgun.net/v3"),
                ),
            ),
            webhook_fields=(
                WEBHOOK_SECRET,
                CredentialField(
                    "webhook_signing_key",
                    _("HTTP webhook signing key"),
                    secret=True,
                    required=False,
                    help_text=_("Mailgun → Sending → Webhooks; webhooks are rejected without it."),
                ),
            ),
            backend="anymail.backends.mailgun.EmailBackend",
        ),
        KindSpec(
            ProviderKind.POSTMARK,
            "Postmark",
            credential_fields=(
                CredentialField("server_token", _("Server API token"), secret=True),
                CredentialField(
                    "message_stream",
                    _("Message stream"),
                    required=False,
                    help_text=_("Empty: the server's default transactional stream."),
                ),
            ),
            webhook_fields=(WEBHOOK_SECRET,),
            backend="anymail.backends.postmark.EmailBackend",
        ),
        KindSpec(
            ProviderKind.SENDGRID,
            "SendGrid",
            credential_fields=(API_KEY,),
            webhook_fields=(
                WEBHOOK_SECRET,
                CredentialField(
                    "tracking_webhook_verification_key",
                    _("Event webhook verification key"),
                    required=False,
                    type="textarea",
                    help_text=_("Optional: the public key of SendGrid's signed event webhook."),
                ),
            ),
            backend="anymail.backends.sendgrid.EmailBackend",
        ),
        KindSpec(
            ProviderKind.SPARKPOST,
            "SparkPost",
            credential_fields=(
                API_KEY,
                CredentialField(
                    "api_url",
                    _("API URL"),
                    type="url",
                    required=False,
                    help_text=_("For the EU region: https://api.eu.sparkpost.com/api/v1"),
                ),
            ),
            webhook_fields=(WEBHOOK_SECRET,),
            backend="anymail.backends.sparkpost.EmailBackend",
        ),
        KindSpec(
            ProviderKind.BREVO,
            "Brevo",
            credential_fields=(API_KEY,),
            webhook_fields=(WEBHOOK_SECRET,),
            backend="anymail.backends.brevo.EmailBackend",
        ),
        KindSpec(
            ProviderKind.MAILJET,
            "Mailjet",
            credential_fields=(API_KEY, CredentialField("secret_key", _("Secret key"), secret=True)),
            webhook_fields=(WEBHOOK_SECRET,),
            backend="anymail.backends.mailjet.EmailBackend",
        ),
        KindSpec(
            ProviderKind.RESEND,
            "Resend",
            credential_fields=(API_KEY,),
            webhook_fields=(
                WEBHOOK_SECRET,
                CredentialField(
                    "signing_secret",
                    _("Webhook signing secret"),
                    secret=True,
                    required=False,
                    help_text=_("whsec_… from Resend → Webhooks."),
                ),
            ),
            backend="anymail.backends.resend.EmailBackend",
        ),
    )
}


def kind_spec(kind: str) -> KindSpec:
    return KINDS[kind]


def provider_credentials(provider: Provider) -> dict[str, Any]:
    """The decrypted credentials (never shown in a page)."""
    return crypto.decrypt_json(provider.credentials)


def provider_webhook_credentials(provider: Provider) -> dict[str, Any]:
    """The kwargs the provider's anymail tracking webhook view is built with: `webhook_secret`
    (basic auth, "user:password") and the ESP's signing key where it has one
    (`webhook_signing_key` for Mailgun, `signing_secret` for Resend,
    `tracking_webhook_verification_key` for SendGrid). Empty values are left out."""
    credentials = provider_credentials(provider)
    return {f.key: credentials[f.key] for f in kind_spec(provider.kind).webhook_fields if credentials.get(f.key)}


def webhook_url(provider: Provider) -> str:
    """Where the ESP posts its events (without the basic-auth part), or "" for kinds without webhooks."""
    if not kind_spec(provider.kind).has_webhooks:
        return ""
    return f"{settings.PUBLIC_BASE_URL}/webhooks/{provider.webhook_token}/{provider.kind}/tracking/"


def _anymail_options(spec: KindSpec, credentials: dict[str, Any]) -> dict[str, Any]:
    if spec.backend_options is not None:
        return spec.backend_options(credentials)
    keys = {f.key for f in spec.credential_fields}
    return {key: value for key, value in credentials.items() if key in keys and value not in ("", None)}


class _UnreadableTransport(Transport):
    """Stands in when the stored credentials cannot be decrypted: every use says why."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason

    def open(self) -> None:
        raise PermanentSendError(self.reason)

    def send(self, email: Any) -> str:
        raise PermanentSendError(self.reason)


def transport_for(provider: Provider | None, *, workspace_id: int | None = None) -> Transport:
    """The adapter of a provider; None (no provider configured) is the outbox. The outbox files
    its rows under the provider's workspace, or `workspace_id` when there is no provider."""
    if provider is None or provider.kind == ProviderKind.OUTBOX:
        return OutboxTransport(workspace_id=provider.workspace_id if provider is not None else workspace_id)
    spec = kind_spec(provider.kind)
    try:
        credentials = provider_credentials(provider)
    except crypto.DecryptionError as error:
        return _UnreadableTransport(provider.kind, f"{provider.name}: {error}")
    if provider.kind == ProviderKind.SMTP:
        return SmtpTransport(credentials)
    return AnymailTransport(
        kind=spec.kind, label=str(spec.label), backend=spec.backend, options=_anymail_options(spec, credentials)
    )


def default_provider(workspace: Workspace) -> Provider | None:
    """The provider the workspace's mail goes through; None means the outbox."""
    return Provider.objects.in_workspace(workspace).filter(is_default=True).first()


def default_sender(workspace: Workspace) -> SenderIdentity | None:
    return SenderIdentity.objects.in_workspace(workspace).filter(is_default=True).first()


def sender_from_header(sender: SenderIdentity | None, workspace: Workspace) -> str:
    """The From header of the workspace's mail: the sender identity, else the workspace's own
    sender address (Workspace settings), else the platform's. Names are quoted as needed; the
    mail backend encodes non-ASCII ones (RFC 2047)."""
    if sender is not None:
        return format_address(sender.from_name, sender.from_email)
    if workspace.default_from_email:
        return format_address(workspace.default_from_name or workspace.name, workspace.default_from_email)
    return str(settings.DEFAULT_FROM_EMAIL)


def format_address(name: str, address: str) -> str:
    """`"Name" <address>` with the name quoted but not encoded: Django's SMTP path and anymail's
    address parser both read it back as the same Unicode name, and encode it where they must."""
    name = " ".join(name.split())  # no line breaks in a header
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'
