"""The ESPs behind django-anymail (Amazon SES, Mailgun, Postmark, SendGrid, SparkPost, Brevo,
Mailjet, Resend): one anymail backend per transport, built from the provider's decrypted
credentials as init kwargs (anymail reads its settings from kwargs before Django settings, so
two workspaces' Mailgun accounts never mix), its HTTP session or boto3 client opened once and
reused for every message until close()."""

from __future__ import annotations

from typing import Any

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailError,
    AnymailRecipientsRefused,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

from campaigns.providers.base import (
    PermanentSendError,
    SendError,
    TransientSendError,
    Transport,
    require_recipients,
    strip_internal_headers,
)
from esp.net import OutboundRefused, guard_session

# Amazon's error codes that mean "slow down" or "try later" (botocore ClientError codes).
AWS_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "LimitExceededException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
}


def _is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def classify_anymail_error(error: BaseException) -> SendError:
    """HTTP 429/5xx and network errors are transient; other 4xx, refused recipients, invalid
    addresses and unsupported features are permanent, and so is an API URL the outbound guard
    refuses (said in one fixed text: nothing of what listens there)."""
    text = str(error)
    refused = _refused_by_guard(error)
    if refused is not None:
        failure = PermanentSendError(str(refused))
        failure.maybe_delivered = False
        return failure
    if isinstance(error, AnymailRecipientsRefused):
        # anymail's text is generic; the ESP's answer says why (bounced before, invalid, ...).
        response = getattr(error, "response", None)
        detail = str(getattr(response, "text", "") or "")
        return PermanentSendError(f"{text}: {detail}" if detail else text, code=getattr(response, "status_code", None))
    if isinstance(error, AnymailAPIError):
        status = getattr(error, "status_code", None)
        if status is not None:
            if _is_transient_status(int(status)):
                return TransientSendError(text, code=int(status))
            return PermanentSendError(text, code=int(status))
        return _classify_cause(error.__cause__, text)
    if isinstance(error, AnymailError):
        # Invalid address, unsupported feature, serialization: the message itself is the problem.
        return PermanentSendError(text)
    return _classify_cause(error, text)


def _classify_cause(cause: BaseException | None, text: str) -> SendError:
    """An API error without an HTTP status: a network failure (requests) or a boto3 error."""
    if cause is None:
        return TransientSendError(text)
    response = getattr(cause, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in AWS_TRANSIENT_CODES or (isinstance(status, int) and _is_transient_status(status)):
            return TransientSendError(text, code=status if isinstance(status, int) else None)
        return PermanentSendError(text, code=status if isinstance(status, int) else None)
    # requests.RequestException, botocore's connection errors, OSError: the network.
    failure = TransientSendError(text)
    if _never_connected(cause):
        failure.maybe_delivered = False  # safe to send again: the request never left
    return failure


# Raised before the request could leave: the name did not resolve, the connection could not
# be made in time (urllib3's NewConnectionError, NameResolutionError is one; the connect
# timeouts of urllib3, requests and botocore; botocore's EndpointConnectionError). A connection
# dropped later, a read timeout, a TLS error may come after the ESP took the message.
_NOT_CONNECTED = {"NewConnectionError", "ConnectTimeoutError", "ConnectTimeout", "EndpointConnectionError"}


def _chain(error: BaseException) -> list[BaseException]:
    """The errors in a network error's chain: its causes, urllib3's reason inside requests'
    ConnectionError, the errors among its arguments."""
    seen: set[int] = set()
    found: list[BaseException] = []
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return found


def _refused_by_guard(error: BaseException) -> OutboundRefused | None:
    return next((e for e in _chain(error) if isinstance(e, OutboundRefused)), None)


def _never_connected(error: BaseException) -> bool:
    """Whether a network error happened before the request was sent, by the classes of the
    errors in its chain."""
    return any(klass.__name__ in _NOT_CONNECTED for current in _chain(error) for klass in type(current).__mro__)


def _message_id(email: EmailMultiAlternatives) -> str:
    status = getattr(email, "anymail_status", None)
    message_id = getattr(status, "message_id", None)
    if isinstance(message_id, str):
        return message_id
    if message_id:  # one id per recipient: a set (None for a recipient the ESP did not name)
        return ",".join(sorted(str(m) for m in message_id if m))[:255]
    return ""


class AnymailTransport(Transport):
    def __init__(self, *, kind: str, label: str, backend: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.label = label
        self.backend_path = backend
        self.options = options
        self.backend: BaseEmailBackend | None = None

    def open(self) -> None:
        if self.backend is not None:
            return
        try:
            backend_class = import_string(self.backend_path)
        except ImportError as error:
            # anymail's AnymailImproperlyInstalled names the missing package (boto3 for SES).
            raise PermanentSendError(f"{self.label} cannot be used on this server: {error}") from error
        try:
            backend = backend_class(fail_silently=False, **self.options)
        except (AnymailConfigurationError, ImproperlyConfigured) as error:
            raise PermanentSendError(f"{self.label} is not configured: {error}") from error
        try:
            backend.open()
        except Exception as error:  # anymail lets the client library's own errors through
            raise classify_anymail_error(error) from error
        session = getattr(backend, "session", None)
        if isinstance(session, requests.Session):
            # The API URL is the tenant's to set: its connections go through the outbound guard.
            guard_session(session)
        self.backend = backend

    def close(self) -> None:
        if self.backend is None:
            return
        try:
            self.backend.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken session must not fail the batch
            pass
        self.backend = None

    def send(self, email: EmailMultiAlternatives) -> str:
        require_recipients(email)
        strip_internal_headers(email)
        self.open()
        assert self.backend is not None
        try:
            sent = self.backend.send_messages([email])
        except AnymailError as error:
            raise classify_anymail_error(error) from error
        except OSError as error:  # a network error anymail did not wrap
            raise _classify_cause(error, f"{self.label}: {error}") from error
        if not sent:
            raise PermanentSendError(f"{self.label} did not accept the message.")
        # Taken: even without an id (webhooks then cannot name it) it must not be sent again.
        return _message_id(email)
