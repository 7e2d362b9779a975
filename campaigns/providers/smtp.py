"""SMTP: one connection per batch, reused for every message until close().

Django's SMTP backend opens the connection (SSL / STARTTLS / login); the envelope is then sent
step by step (MAIL, RCPT, DATA) instead of through smtplib's `sendmail`, so that a dropped
connection can be told apart by when it dropped: before DATA nothing was handed over and the
message is sent again on a fresh connection (once); during DATA the server may have taken it,
so it is not re-sent here — the error goes back to the caller as transient.
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address

from campaigns.models import ProviderKind
from campaigns.providers.base import (
    PermanentSendError,
    SendError,
    TransientSendError,
    Transport,
    ensure_message_id,
    require_recipients,
    strip_internal_headers,
)

DEFAULT_PORT = 587
DEFAULT_TIMEOUT = 30


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def classify_smtp_error(error: BaseException) -> SendError:
    """4xx replies and connection trouble are transient, 5xx replies permanent."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in error.recipients.values()]
        text = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in error.recipients.items())
        code = codes[0] if codes else None
        # One address among several refused for now (4xx) makes the whole message worth retrying.
        if any(400 <= c < 500 for c in codes):
            return TransientSendError(text, code=code)
        return PermanentSendError(text, code=code)
    if isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)):
        return TransientSendError(f"SMTP connection failed: {error}")
    if isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
        text = f"{code} {_text(error.smtp_error)}"
        if 500 <= code < 600:
            return PermanentSendError(text, code=code)
        return TransientSendError(text, code=code)
    if isinstance(error, smtplib.SMTPException):
        # Protocol-level refusals without a reply code (no STARTTLS offered, no usable AUTH
        # mechanism): a configuration problem that retrying does not fix.
        return PermanentSendError(f"SMTP: {error}")
    if isinstance(error, OSError):
        return TransientSendError(f"SMTP connection failed: {error.__class__.__name__}: {error}")
    return PermanentSendError(f"SMTP: {error.__class__.__name__}: {error}")


class _DroppedBeforeData(Exception):
    """The connection was gone before the message's data went out: safe to send again."""


class SmtpTransport(Transport):
    kind = ProviderKind.SMTP

    def __init__(self, credentials: dict[str, Any]) -> None:
        use_ssl = bool(credentials.get("use_ssl"))
        self.backend = EmailBackend(
            host=str(credentials.get("host") or "localhost"),
            port=int(credentials.get("port") or DEFAULT_PORT),
            username=str(credentials.get("username") or ""),
            password=str(credentials.get("password") or ""),
            use_tls=bool(credentials.get("use_tls")) and not use_ssl,
            use_ssl=use_ssl,
            timeout=int(credentials.get("timeout") or DEFAULT_TIMEOUT),
            fail_silently=False,
        )

    def open(self) -> None:
        if self.backend.connection is not None:
            return
        try:
            self.backend.open()
        except (smtplib.SMTPException, OSError) as error:
            self.backend.close()
            raise classify_smtp_error(error) from error

    def close(self) -> None:
        self.backend.close()  # swallows the errors of a connection that is already gone

    def send(self, email: EmailMultiAlternatives) -> str:
        require_recipients(email)
        message_id = ensure_message_id(email)
        strip_internal_headers(email)
        encoding = email.encoding or settings.DEFAULT_CHARSET
        from_address = sanitize_address(email.from_email, encoding)
        recipients = [sanitize_address(address, encoding) for address in email.recipients()]
        data = email.message().as_bytes(linesep="\r\n")
        for attempt in (1, 2):
            self.open()
            try:
                self._transmit(from_address, recipients, data)
            except _DroppedBeforeData as dropped:
                # Typically the server closed an idle connection between two batches' sends.
                self.close()
                if attempt == 2:
                    raise classify_smtp_error(dropped.__cause__ or dropped) from dropped
                continue
            except (smtplib.SMTPException, OSError) as error:
                if isinstance(error, (smtplib.SMTPServerDisconnected, OSError)):
                    self.close()  # the next send opens a fresh connection
                raise classify_smtp_error(error) from error
            return message_id
        raise AssertionError("unreachable")

    def _transmit(self, from_address: str, recipients: list[str], data: bytes) -> None:
        connection = self.backend.connection
        assert connection is not None
        try:
            connection.ehlo_or_helo_if_needed()
            options = [f"size={len(data)}"] if connection.does_esmtp and connection.has_extn("size") else []
            code, reply = connection.mail(from_address, options)
            if code != 250:
                self._reset(connection)
                raise smtplib.SMTPSenderRefused(code, reply, from_address)
            refused: dict[str, tuple[int, bytes]] = {}
            for recipient in recipients:
                code, reply = connection.rcpt(recipient)
                if code not in (250, 251):
                    refused[recipient] = (code, reply)
            if len(refused) == len(recipients):
                self._reset(connection)
                raise smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]
        except (smtplib.SMTPServerDisconnected, ConnectionError) as error:
            raise _DroppedBeforeData() from error
        code, reply = connection.data(data)
        if code != 250:
            self._reset(connection)
            raise smtplib.SMTPDataError(code, reply)

    @staticmethod
    def _reset(connection: smtplib.SMTP) -> None:
        try:
            connection.rset()
        except smtplib.SMTPServerDisconnected:
            pass
