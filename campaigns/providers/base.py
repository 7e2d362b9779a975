"""The one small interface every way out for mail implements, and the two kinds of failure.

A `Transport` is opened once per batch, sends many messages over the same connection (SMTP
connection, HTTP session, boto3 client) and is closed at the end. `send()` returns the
provider's id for the message — what its webhooks will name it by — or raises:

- `TransientSendError`: try again later (4xx SMTP replies, HTTP 429/5xx, network errors);
- `PermanentSendError`: this message will never go through this provider as it is (5xx SMTP
  replies, rejected recipients, other HTTP 4xx, bad configuration).

Both carry the provider's own words, so the send log can show them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from django.core.mail import EmailMultiAlternatives, make_msgid

from esp.mail import WORKSPACE_HEADER

# What the send log keeps of a provider's answer.
MAX_ERROR_LENGTH = 1000


class SendError(Exception):
    """A message the provider did not take. `code` is the SMTP reply code or HTTP status."""

    transient: bool = False
    # Whether the provider may have taken the message although this was raised; None: not
    # known, judged by the sender from `code` (campaigns.delivery.retries.maybe_delivered).
    maybe_delivered: bool | None = None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        message = message.strip() or self.__class__.__name__
        if len(message) > MAX_ERROR_LENGTH:
            message = message[: MAX_ERROR_LENGTH - 1] + "…"
        super().__init__(message)
        self.message = message
        self.code = code


class TransientSendError(SendError):
    """Worth retrying with a backoff: the provider or the network is busy or down."""

    transient = True


class PermanentSendError(SendError):
    """Not worth retrying: the provider refused this message, or the provider is misconfigured."""


# The metadata key under which a message carries our Message id to an ESP and back in the
# ESP's webhook events.
ESP_MESSAGE_ID = "esp_message_id"


class PreparedEmail(ABC):
    """One email ready for the hand-over, in each shape a transport may want it: its parts
    (the outbox stores them), its MIME bytes and SMTP envelope (SMTP writes them as they are),
    or Django's EmailMessage (the anymail ESPs). campaigns.delivery.composer makes them; the
    bytes and the EmailMessage are built only for the transport that asks."""

    # The From header as Django takes it (`"Name" <address>`) and the bare address.
    from_email: str
    envelope_from: str
    to: list[str]
    reply_to: list[str]
    subject: str
    text: str
    html: str
    # Extra headers (compliance headers, Message-ID) in the order they are written.
    headers: dict[str, str]
    message_id: str
    # What the ESP echoes in its webhooks' events ({ESP_MESSAGE_ID: our Message id}).
    metadata: dict[str, str]

    def recipients(self) -> list[str]:
        return [address for address in self.to if address]

    @abstractmethod
    def as_bytes(self) -> bytes:
        """The message as sent over SMTP (CRLF line ends, dot-stuffing not applied)."""

    @abstractmethod
    def email(self) -> EmailMultiAlternatives:
        """The same message as Django's EmailMessage."""


class Transport(ABC):
    """Open once, send many, close. Usable as a context manager."""

    kind: str = ""
    # Whether send_prepared() writes PreparedEmail.as_bytes() (the sender builds the bytes
    # before the hand-over then, so that a message that cannot be written fails before it
    # is marked `sending`).
    wants_bytes: bool = False

    def open(self) -> None:  # noqa: B027 — a transport without a connection opens nothing
        """Connect (raises TransientSendError / PermanentSendError when that fails)."""

    @abstractmethod
    def send(self, email: EmailMultiAlternatives) -> str:
        """Hand one message over and return the provider's message id."""

    def send_prepared(self, prepared: PreparedEmail, following: PreparedEmail | None = None) -> str:
        """Hand over a message of the send loop. Transports that can take the message's parts
        or bytes as they are override this; the others get Django's EmailMessage. `following`
        is the message the send loop will hand over next through this transport: a transport
        may get it under way (SMTP sends its envelope along), never deliver it before its own
        call."""
        return self.send(prepared.email())

    def close(self) -> None:  # noqa: B027 — a transport without a connection closes nothing
        """Drop the connection; never raises."""

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _header_key(email: EmailMultiAlternatives, name: str) -> str | None:
    lowered = name.lower()
    return next((key for key in email.extra_headers if key.lower() == lowered), None)


def message_id_domain(from_email: str) -> str | None:
    """The domain of a From header for Message-IDs (so they look like the sender's own and not
    like our host name); None when there is none usable."""
    domain = from_email.rsplit("@", 1)[-1].strip(" >") if "@" in from_email else None
    if domain:
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = None
    return domain or None


def ensure_message_id(email: EmailMultiAlternatives) -> str:
    """The message's Message-ID header, set now when the sender did not set one (with the
    From domain)."""
    key = _header_key(email, "Message-ID")
    if key is not None:
        return str(email.extra_headers[key])
    message_id = make_msgid(domain=message_id_domain(str(email.from_email or "")))
    email.extra_headers["Message-ID"] = message_id
    return message_id


def strip_internal_headers(email: EmailMultiAlternatives) -> None:
    """The outbox's workspace marker never leaves the process."""
    key = _header_key(email, WORKSPACE_HEADER)
    if key is not None:
        del email.extra_headers[key]


def require_recipients(email: EmailMultiAlternatives) -> None:
    if not email.recipients():
        raise PermanentSendError("The message has no recipients.")
