"""SMTP: one connection per batch, reused for every message until close().

Django's SMTP backend opens the connection (SSL / STARTTLS / login); the envelope is then sent
step by step (MAIL, RCPT, DATA) instead of through smtplib's `sendmail`, so that a dropped
connection can be told apart by when it dropped: before DATA nothing was handed over and the
message is sent again on a fresh connection (once); during DATA the server may have taken it,
so it is not re-sent here — the error goes back to the caller as transient.

The send loop's messages come written (`send_prepared`: campaigns.delivery.composer made the
bytes; addresses were validated when stored, so a plain one goes into the envelope as it is),
and a server that offers PIPELINING gets MAIL, RCPT and DATA in one write. The send loop also
names the message it will hand over next (`following`): its MAIL, RCPT and DATA ride in the
same write as this message's data (RFC 2920 allows commands after the end of data), so a
message costs one round trip instead of two. Only commands go ahead, never data: the next
message's data leaves after its own `send_prepared` call, when the send loop has committed it
as `sending`. `send()` takes a Django EmailMessage as before (the provider's "send test").
"""

from __future__ import annotations

import re
import smtplib
import socket
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address

from campaigns.models import ProviderKind
from campaigns.providers.base import (
    PermanentSendError,
    PreparedEmail,
    SendError,
    TransientSendError,
    Transport,
    ensure_message_id,
    require_recipients,
    strip_internal_headers,
)
from esp.net import OutboundRefused, outbound_connection

DEFAULT_PORT = 587
DEFAULT_TIMEOUT = 30

# An address that needs no quoting or encoding (ASCII dot-atom local part and domain): what
# sanitize_address and smtplib's quoteaddr make of it is the address itself in brackets.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
# smtplib's dot-stuffing, needed only when a line starts with a dot.
_LEADING_DOTS = re.compile(rb"(?m)^\.")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def classify_smtp_error(error: BaseException) -> SendError:
    """4xx replies and connection trouble are transient, 5xx replies permanent; a host the
    outbound guard refuses is permanent (and said the same way whatever listens there)."""
    if isinstance(error, OutboundRefused):
        return PermanentSendError(f"SMTP: {error}")
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


class GuardedSMTP(smtplib.SMTP):
    """smtplib's client with its socket made through the outbound guard (esp.net): the host is
    resolved and checked once and the connection goes to the checked address. STARTTLS and
    implicit TLS still check the certificate against the host name."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        return outbound_connection((host, port), timeout, self.source_address)


class GuardedSMTPSSL(smtplib.SMTP_SSL, GuardedSMTP):
    """SMTP_SSL wraps the socket GuardedSMTP._get_socket made (its super() is GuardedSMTP)."""


class GuardedEmailBackend(EmailBackend):
    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return GuardedSMTPSSL if self.use_ssl else GuardedSMTP


class _DroppedBeforeData(Exception):
    """The connection was gone before the message's data went out: safe to send again."""


@dataclass
class _Envelope:
    """A message's SMTP envelope: `from_address` in its envelope form (`<address>`), each
    recipient as (address, envelope form) — the address names a refusal — and the size."""

    from_address: str
    recipients: list[tuple[str, str]]
    size: int


@dataclass
class _Ahead:
    """The envelope of the message the send loop hands over next, sent with the previous
    message's data, and the server's replies to it (MAIL, each RCPT, DATA)."""

    prepared: PreparedEmail
    replies: list[tuple[int, bytes]]


class SmtpTransport(Transport):
    kind = ProviderKind.SMTP
    # The send loop's messages arrive written (campaigns.delivery.composer): their bytes go out
    # as they are, with no Django EmailMessage built and no address parsed again.
    wants_bytes = True

    def __init__(self, credentials: dict[str, Any]) -> None:
        use_ssl = bool(credentials.get("use_ssl"))
        self.backend = GuardedEmailBackend(
            host=str(credentials.get("host") or "localhost"),
            port=int(credentials.get("port") or DEFAULT_PORT),
            username=str(credentials.get("username") or ""),
            password=str(credentials.get("password") or ""),
            use_tls=bool(credentials.get("use_tls")) and not use_ssl,
            use_ssl=use_ssl,
            timeout=int(credentials.get("timeout") or DEFAULT_TIMEOUT),
            fail_silently=False,
        )
        self._ahead: _Ahead | None = None

    def open(self) -> None:
        if self.backend.connection is not None:
            return
        try:
            self.backend.open()
        except (smtplib.SMTPException, OSError) as error:
            self.backend.close()
            failure = classify_smtp_error(error)
            failure.maybe_delivered = False  # nothing goes over a connection that did not open
            raise failure from error

    def close(self) -> None:
        if self._ahead is not None:
            self._abandon()  # the server may wait for data: a QUIT would be taken for it
        self.backend.close()  # swallows the errors of a connection that is already gone

    def _abandon(self) -> None:
        """Drop the connection without a word. In the middle of a transaction (the server said
        354 and waits for data) this abandons it: nothing is delivered without the final dot."""
        self._ahead = None
        connection = self.backend.connection
        if connection is not None:
            connection.close()
            self.backend.connection = None

    def send(self, email: EmailMultiAlternatives) -> str:
        require_recipients(email)
        message_id = ensure_message_id(email)
        strip_internal_headers(email)
        encoding = email.encoding or settings.DEFAULT_CHARSET
        from_address = smtplib.quoteaddr(sanitize_address(email.from_email, encoding))
        recipients = []
        for address in email.recipients():
            sanitized = sanitize_address(address, encoding)
            recipients.append((sanitized, smtplib.quoteaddr(sanitized)))
        data = email.message().as_bytes(linesep="\r\n")
        return self._send_data(_Envelope(from_address, recipients, len(data)), data, message_id)

    def send_prepared(self, prepared: PreparedEmail, following: PreparedEmail | None = None) -> str:
        data = prepared.as_bytes()
        ahead = None
        if following is not None and following.recipients():
            ahead = (following, _prepared_envelope(following, len(following.as_bytes())))
        return self._send_data(_prepared_envelope(prepared, len(data)), data, prepared.message_id, prepared, ahead)

    def _send_data(
        self,
        envelope: _Envelope,
        data: bytes,
        message_id: str,
        prepared: PreparedEmail | None = None,
        ahead: tuple[PreparedEmail, _Envelope] | None = None,
    ) -> str:
        if not envelope.recipients:
            raise PermanentSendError("The message has no recipients.")
        for attempt in (1, 2):
            self.open()
            try:
                self._transmit(envelope, data, prepared, ahead)
            except _DroppedBeforeData as dropped:
                # Typically the server closed an idle connection between two batches' sends.
                self.close()
                if attempt == 2:
                    raise classify_smtp_error(dropped.__cause__ or dropped) from dropped
                continue
            except (smtplib.SMTPException, OSError) as error:
                # (SMTPException is an OSError too: a refusal leaves the connection usable.)
                if isinstance(error, smtplib.SMTPServerDisconnected) or not isinstance(error, smtplib.SMTPException):
                    self.close()  # the next send opens a fresh connection
                raise classify_smtp_error(error) from error
            return message_id
        raise AssertionError("unreachable")

    def _transmit(
        self,
        envelope: _Envelope,
        data: bytes,
        prepared: PreparedEmail | None,
        ahead: tuple[PreparedEmail, _Envelope] | None,
    ) -> None:
        """MAIL, RCPT and DATA as smtplib's mail(), rcpt() and data() send them. A server that
        offers PIPELINING (RFC 2920) gets MAIL, the RCPTs and DATA in one write and answers
        them together — unless they went ahead with the previous message's data — and `ahead`'s
        envelope goes with this message's data. Either way the data goes out only after the
        354 reply."""
        replies = self._replies_ahead(prepared)
        connection = self.backend.connection
        assert connection is not None
        try:
            if replies is None:
                connection.ehlo_or_helo_if_needed()
                commands = _commands(connection, envelope)
                if _pipelines(connection):
                    connection.send(commands)
                    replies = [connection.getreply() for _ in range(len(envelope.recipients) + 2)]
                else:
                    self._envelope_one_by_one(connection, envelope)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as error:
            # Nothing was handed over before the data: sending again is safe.
            raise _DroppedBeforeData() from error
        if replies is not None:
            self._check_pipelined(connection, envelope, replies)
        else:
            connection.putcmd("data")
            code, reply = connection.getreply()
            if code != 354:
                self._reset(connection)  # the envelope stands until RSET: the connection is reused
                raise smtplib.SMTPDataError(code, reply)
        if data.startswith(b".") or b"\n." in data:
            data = _LEADING_DOTS.sub(b"..", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        data += b".\r\n"
        following = _commands_ahead(connection, ahead[1]) if ahead is not None else None
        if ahead is not None and following is not None:
            connection.send(data + following)
            code, reply = connection.getreply()
            self._read_ahead(connection, *ahead)
        else:
            connection.send(data)
            code, reply = connection.getreply()
            if code != 250:
                self._reset(connection)
        if code != 250:
            # (The end of data ends the transaction either way; the next envelope, if it
            # went along, stands.)
            raise smtplib.SMTPDataError(code, reply)

    def _replies_ahead(self, prepared: PreparedEmail | None) -> list[tuple[int, bytes]] | None:
        """The replies to `prepared`'s envelope if it went ahead; None when it has yet to be
        sent. The envelope of a message the send loop then did not hand over (it was no longer
        this worker's, or the batch ran out of time) is abandoned with the connection."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        if ahead.prepared is prepared:
            return ahead.replies
        self._abandon()
        self.open()
        return None

    def _read_ahead(self, connection: smtplib.SMTP, prepared: PreparedEmail, envelope: _Envelope) -> None:
        try:
            self._ahead = _Ahead(prepared, [connection.getreply() for _ in range(len(envelope.recipients) + 2)])
        except (smtplib.SMTPServerDisconnected, OSError):
            # This message's data was answered; the next one starts over on a new connection.
            self._abandon()

    def _envelope_one_by_one(self, connection: smtplib.SMTP, envelope: _Envelope) -> None:
        mail, *rcpts, _data = _commands(connection, envelope).splitlines(keepends=True)
        connection.send(mail)
        code, reply = connection.getreply()
        if code != 250:
            self._reset(connection)
            raise smtplib.SMTPSenderRefused(code, reply, envelope.from_address)
        refused: dict[str, tuple[int, bytes]] = {}
        for (recipient, _), command in zip(envelope.recipients, rcpts, strict=True):
            connection.send(command)
            code, reply = connection.getreply()
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        if len(refused) == len(envelope.recipients):
            self._reset(connection)
            raise smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]

    def _check_pipelined(self, connection: smtplib.SMTP, envelope: _Envelope, replies: list[tuple[int, bytes]]) -> None:
        """The replies to MAIL, the RCPTs and DATA sent together."""
        (mail_code, mail_reply), (data_code, data_reply) = replies[0], replies[-1]
        failure: smtplib.SMTPException | None = None
        if mail_code != 250:
            failure = smtplib.SMTPSenderRefused(mail_code, mail_reply, envelope.from_address)
        else:
            refused = {
                recipient: reply
                for (recipient, _), reply in zip(envelope.recipients, replies[1:-1], strict=True)
                if reply[0] not in (250, 251)
            }
            if len(refused) == len(envelope.recipients):
                failure = smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]
            elif data_code != 354:
                failure = smtplib.SMTPDataError(data_code, data_reply)
        if failure is None:
            return
        if data_code == 354:
            # A server that waits for data although the envelope failed (RFC 2920 says it must
            # refuse DATA then): the connection is dropped without the final dot, which
            # abandons the transaction; the next message opens a fresh one.
            self._abandon()
        else:
            self._reset(connection)
        raise failure

    @staticmethod
    def _reset(connection: smtplib.SMTP) -> None:
        try:
            connection.rset()
        except smtplib.SMTPServerDisconnected:
            pass


def _pipelines(connection: smtplib.SMTP) -> bool:
    return bool(connection.does_esmtp and connection.has_extn("pipelining"))


def _commands(connection: smtplib.SMTP, envelope: _Envelope) -> str:
    """MAIL, the RCPTs and DATA, each with its line end, as smtplib would send them."""
    size = f" size={envelope.size}" if connection.does_esmtp and connection.has_extn("size") else ""
    commands = [f"mail FROM:{envelope.from_address}{size}", *(f"rcpt TO:{form}" for _, form in envelope.recipients)]
    if any("\r" in command or "\n" in command for command in commands):
        raise ValueError("command and arguments contain prohibited newline characters")
    return "".join(f"{command}\r\n" for command in commands) + "data\r\n"


def _commands_ahead(connection: smtplib.SMTP, envelope: _Envelope) -> bytes | None:
    """The next message's envelope to send with this one's data; None when the server does not
    pipeline or the envelope cannot be written (its own send will say why)."""
    if not _pipelines(connection):
        return None
    try:
        return _commands(connection, envelope).encode(connection.command_encoding)
    except ValueError:
        return None


def _prepared_envelope(prepared: PreparedEmail, size: int) -> _Envelope:
    return _Envelope(
        _envelope_address(prepared.envelope_from),
        [(address, _envelope_address(address)) for address in prepared.recipients()],
        size,
    )


def _envelope_address(address: str) -> str:
    """An address as smtplib puts it in MAIL FROM / RCPT TO after Django's sanitize_address."""
    if _PLAIN_ADDRESS.match(address):
        return f"<{address}>"
    return smtplib.quoteaddr(sanitize_address(address, settings.DEFAULT_CHARSET))
