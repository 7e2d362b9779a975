"""Turning one claimed Message into the email handed to the provider.

This is the one place where delivery meets the other parts of campaigns: content
(campaigns.content: the sandboxed rendering), tracking (campaigns.tracking: tracked links,
the links of the message and the compliance headers) and providers (campaigns.providers: the
transport, its error classes and the shared rate limit). Everything the sender needs from them
is imported here, so the seam between the parts is this one small module.

What it makes is a PreparedEmail (campaigns.providers.base): the parts, the envelope and, for
the transports that write bytes (SMTP), the MIME bytes written directly (`mime_bytes`, the
same bytes Django would write); Django's EmailMessage is built only for the anymail ESPs.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message as MIMEMessage
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from io import BytesIO
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import SafeMIMEMultipart, forbid_multi_line_headers

from campaigns.content.errors import TemplateProblem
from campaigns.content.rendering import (
    RenderedEmail,
    contact_as_dict,
    email_context,
    render_email,
    template_version_snapshot,
)
from campaigns.models import DeliverySettings, EmailTemplate, Message, SenderIdentity
from campaigns.providers.base import (
    ESP_MESSAGE_ID,
    PermanentSendError,
    PreparedEmail,
    TransientSendError,
    Transport,
    message_id_domain,
)
from campaigns.providers.ratelimit import rate_limit_wait
from campaigns.providers.registry import sender_from_header, transport_for
from campaigns.tracking.headers import compliance_headers, message_urls
from campaigns.tracking.links import track_html
from campaigns.tracking.rules import TrackingRules
from campaigns.tracking.tokens import message_token
from esp.models import Workspace

__all__ = [
    "Composed",
    "PermanentSendError",
    "PreparedEmail",
    "Rendered",
    "TemplateProblem",
    "TransientSendError",
    "Transport",
    "compose",
    "contact_as_dict",
    "rate_limit_wait",
    "render",
    "template_version_snapshot",
    "transport_for",
    "wrap",
]


class _Generator(BytesGenerator):
    """The standard library's generator with shortcuts that give the same bytes: a header that
    is short, one line and ASCII (most of them) is written as it is instead of going through
    the folding machinery (~35 µs each, a third of a send's CPU before); a body without
    carriage returns has its line ends replaced at once instead of line by line; the MIME
    boundary is checked against the text without compiling a regular expression. Anything
    else takes the standard path."""

    def _write_headers(self, msg: MIMEMessage) -> None:
        newline = self._NL  # type: ignore[attr-defined]
        limit = self.policy.max_line_length or 998  # type: ignore[union-attr]
        lines: list[str] = []
        for name, value in msg.raw_items():
            if type(value) is str and value.isascii() and len(name) + 2 + len(value) <= limit and not _breaks(value):
                lines.append(f"{name}: {value}{newline}")
            else:
                self._fp.write("".join(lines).encode("ascii"))  # type: ignore[attr-defined]
                lines = []
                self._fp.write(self.policy.fold_binary(name, value))  # type: ignore[attr-defined,union-attr]
        lines.append(newline)
        self._fp.write("".join(lines).encode("ascii"))  # type: ignore[attr-defined]

    @classmethod
    def _make_boundary(cls, text: bytes | None = None) -> str:
        # The standard one compiles a regular expression for each message to make sure the
        # boundary is not in the text; 128 random bits checked with a plain search do as well.
        while True:
            boundary = f"==============={secrets.token_hex(16)}=="
            if text is None or b"--" + boundary.encode("ascii") not in text:
                return boundary

    def _write_lines(self, lines: str) -> None:
        if "\r" in lines:
            super()._write_lines(lines)  # type: ignore[misc]
        elif lines:
            self.write(lines.replace("\n", self._NL))  # type: ignore[attr-defined]


def _breaks(value: str) -> bool:
    return "\n" in value or "\r" in value


class _Alternative(SafeMIMEMultipart):
    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:  # type: ignore[override]
        out = BytesIO()
        _Generator(out, mangle_from_=False).flatten(self, unixfrom=unixfrom, linesep=linesep)
        return out.getvalue()


# Quoted-printable line by line, remembering the lines: binascii's encoder costs ~15 µs a KB
# (~145 µs for a 10 KB email, a tenth of a send's CPU), and most lines of a campaign's HTML are
# the same for every recipient. Each line is encoded with its newline, so it comes out exactly
# as in the whole text (a line's encoding depends only on the line and what ends it: checked
# against b2a_qp of the whole on random texts); text with a CR is encoded whole.
_QP_BYTES_KEPT = 4 * 1024 * 1024  # of source lines; a line unique to each recipient is paid once
_qp_lines: dict[bytes, bytes] = {}
_qp_kept = 0  # bytes of the lines in _qp_lines


def quoted_printable(data: bytes) -> bytes:
    """binascii.b2a_qp(data, istext=True), faster for texts that share lines."""
    global _qp_kept
    if b"\r" in data:
        return binascii.b2a_qp(data, istext=True)
    *lines, last = data.split(b"\n")
    out = []
    for line in lines:
        encoded = _qp_lines.get(line)
        if encoded is None:
            encoded = binascii.b2a_qp(line + b"\n", istext=True)
            if _qp_kept + len(line) > _QP_BYTES_KEPT:
                # The lines unique to each recipient fill it; the shared ones come back at once.
                _qp_lines.clear()
                _qp_kept = 0
            _qp_lines[line] = encoded
            _qp_kept += len(line)
        out.append(encoded)
    out.append(binascii.b2a_qp(last, istext=True))
    return b"".join(out)


class _FoldedSubject(EmailMultiAlternatives):
    """Django's message with the Subject folded the usual way (see subject_header): the one
    place where our mail differs from Django's on purpose, in the plain-Django mode too."""

    def message(self) -> Any:
        msg = super().message()
        if not str(self.subject).isascii():
            # In place (replace_header keeps the order), past Django's __setitem__, which would
            # turn the Header back into a string.
            msg.replace_header("Subject", subject_header(str(self.subject), self.encoding or settings.DEFAULT_CHARSET))
        return msg


class _Email(_FoldedSubject):
    """Django's message, faster to turn into bytes (the per-message cost of a send counts at a
    million messages). The MIME structure is Django's own; two parts of the work change:

    - the HTML part: MJML's HTML has lines longer than SMTP's 998 characters, so it must be
      quoted-printable; Django encodes with the standard library's pure-Python encoder
      (~0.7 ms for a 20 KB email), binascii's (C) makes the same encoding in microseconds;
    - the bytes are written by _Generator (see there)."""

    def _create_mime_attachment(self, content: Any, mimetype: str) -> Any:
        if mimetype == "text/html" and isinstance(content, str):
            part = MIMENonMultipart("text", "html", charset="utf-8")
            part["Content-Transfer-Encoding"] = "quoted-printable"
            part.set_payload(quoted_printable(content.encode()).decode("ascii"))
            return part
        return super()._create_mime_attachment(content, mimetype)  # type: ignore[misc]  # Django's, unstubbed

    def message(self) -> Any:
        msg = super().message()
        if type(msg) is SafeMIMEMultipart:
            msg.__class__ = _Alternative
        return msg


# --- the MIME bytes, written directly ------------------------------------------------------
#
# What Django's EmailMultiAlternatives and _Generator make of a send-loop message (text part,
# HTML part quoted-printable, our headers), byte for byte, without building the objects: ~0.5 ms
# a message less. Only the common shape is written here (UTF-8, a text part without lines
# over 998 bytes); anything else goes through Django (PreparedEmail.as_bytes falls back), and
# tests/campaigns/test_delivery.py compares both writers on awkward messages.

_POLICY = compat32.clone(linesep="\r\n")
_HEADER_LIMIT = compat32.max_line_length or 998
_NEWLINES = re.compile(rb"\r\n|\r|\n")
_MAX_LINE = 998  # RFC 5322; Django quoted-printable-encodes a text part with longer lines


def subject_header(subject: str, encoding: str) -> Header:
    """A non-ASCII Subject as a Header that knows its name. Django stores the encoded words
    made for a line of their own, and the generator then finds the first one too long to
    follow "Subject: " and starts the value on a second line (`Subject: \r\n =?utf-8?b?…`),
    which some readers decode with a leading space. Knowing the name, the first encoded word
    is cut to fit beside it and every line stays within 78 characters."""
    return Header(subject, encoding, header_name="Subject")


def _header_line(name: str, value: str, encoding: str) -> bytes:
    """One top-level header as _Email.message() stores it and _Generator writes it."""
    raw = value
    name, value = forbid_multi_line_headers(name, value, encoding)
    if name == "Subject" and not raw.isascii():
        return _POLICY.fold_binary(name, subject_header(raw, encoding))  # type: ignore[arg-type]  # compat32 takes a Header
    if value.isascii() and len(name) + 2 + len(value) <= _HEADER_LIMIT and not _breaks(value):
        return f"{name}: {value}\r\n".encode("ascii")
    return _POLICY.fold_binary(name, value)  # type: ignore[no-any-return]


# Headers that repeat from message to message (From, Reply-To, most subjects, Feedback-ID):
# encoding a non-ASCII one costs ~35 µs.
_repeated_header_line = lru_cache(maxsize=4096)(_header_line)


def _boundary_header() -> tuple[bytes, bytes]:
    # The multipart Content-Type as the generator folds it once the boundary is set; every
    # boundary of _Generator._make_boundary has the same length and characters, so the folding
    # is the same for all and is worked out once.
    sample = "===============" + "0" * 32 + "=="
    folded = _POLICY.fold_binary("Content-Type", f'multipart/alternative; boundary="{sample}"')
    head, tail = folded.split(sample.encode("ascii"))
    return head, tail


_BOUNDARY_HEAD, _BOUNDARY_TAIL = _boundary_header()
_TEXT_HEAD = b'Content-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: '
_HTML_HEAD = (
    b'Content-Type: text/html; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)


def _crlf(data: bytes) -> bytes:
    """Line ends as the generator writes them (any of CRLF, CR, LF becomes CRLF)."""
    if b"\r" in data:
        return _NEWLINES.sub(b"\r\n", data)
    return data.replace(b"\n", b"\r\n")


def _has_long_line(data: bytes) -> bool:
    return len(data) > _MAX_LINE and any(len(line) > _MAX_LINE for line in data.split(b"\n"))


def mime_bytes(prepared: PreparedEmail, *, date: str, boundary: str | None = None) -> bytes | None:
    """The message's bytes as Django writes them (Date given), or None for a message of a
    shape this writer leaves to Django."""
    encoding = settings.DEFAULT_CHARSET
    text = prepared.text.encode("utf-8")
    if encoding != "utf-8" or not text or _has_long_line(text):
        return None
    text_part = _TEXT_HEAD + (b"7bit" if text.isascii() else b"8bit") + b"\r\n\r\n" + _crlf(text)
    html_part = _HTML_HEAD + _crlf(quoted_printable(prepared.html.encode("utf-8")))
    while boundary is None:
        boundary = _Generator._make_boundary()
        marker = b"--" + boundary.encode("ascii")
        if marker in text_part or marker in html_part:
            boundary = None
    separator = f"--{boundary}".encode("ascii")
    lines = [
        _BOUNDARY_HEAD + boundary.encode("ascii") + _BOUNDARY_TAIL,
        b"MIME-Version: 1.0\r\n",
        _repeated_header_line("Subject", prepared.subject, encoding),
        _repeated_header_line("From", prepared.from_email, encoding),
        _header_line("To", ", ".join(prepared.to), encoding),
    ]
    if prepared.reply_to:
        lines.append(_repeated_header_line("Reply-To", ", ".join(prepared.reply_to), encoding))
    lines.append(_header_line("Date", date, encoding))
    for name, value in prepared.headers.items():
        if name.lower() in ("message-id", "list-unsubscribe"):
            lines.append(_header_line(name, value, encoding))
        else:
            lines.append(_repeated_header_line(name, value, encoding))
    lines += [b"\r\n", separator, b"\r\n", text_part, b"\r\n", separator, b"\r\n", html_part]
    lines += [b"\r\n", separator, b"--\r\n"]
    return b"".join(lines)


@lru_cache(maxsize=1024)
def _envelope_from(from_email: str) -> str:
    return parseaddr(from_email)[1] or from_email


@lru_cache(maxsize=1024)
def _message_id_domain(from_email: str) -> str | None:
    return message_id_domain(from_email)


class _Prepared(PreparedEmail):
    def __init__(
        self,
        *,
        from_email: str,
        to: str,
        reply_to: str,
        subject: str,
        text: str,
        html: str,
        headers: dict[str, str],
        metadata: dict[str, str],
    ) -> None:
        self.from_email = from_email
        self.envelope_from = _envelope_from(from_email)
        self.to = [to]
        self.reply_to = [reply_to] if reply_to else []
        self.subject = subject
        self.text = text
        self.html = html
        # Set here, not left to the transport: the provider id of SMTP and the outbox is this id.
        self.message_id = make_msgid(domain=_message_id_domain(from_email))
        self.headers = {**headers, "Message-ID": self.message_id}
        self.metadata = metadata
        self._bytes: bytes | None = None

    def as_bytes(self) -> bytes:
        if self._bytes is None:
            date = formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
            plain = settings.ESP_RENDER_PLAIN_DJANGO
            data = None if plain else mime_bytes(self, date=date)
            if data is None:
                email = self.email()
                email.extra_headers = {"Date": date, **email.extra_headers}
                # What Django's SMTP backend writes (its EmailMessage, CRLF line ends).
                data = email.message().as_bytes(linesep="\r\n")
            self._bytes = data
        return self._bytes

    def email(self) -> EmailMultiAlternatives:
        # ESP_RENDER_PLAIN_DJANGO: Django's own class, without _Email's shortcuts.
        email = (_FoldedSubject if settings.ESP_RENDER_PLAIN_DJANGO else _Email)(
            subject=self.subject,
            body=self.text,
            from_email=self.from_email,
            to=list(self.to),
            headers=dict(self.headers),
            reply_to=list(self.reply_to) or None,
        )
        email.attach_alternative(self.html, "text/html")
        # anymail hands it to the ESP, whose webhooks send it back: their events find the
        # message by it even when its provider id was never written (the worker died first).
        email.metadata = dict(self.metadata)  # type: ignore[attr-defined]
        return email


@dataclass
class Composed:
    prepared: PreparedEmail
    subject: str
    links: list[str]

    @property
    def email(self) -> EmailMultiAlternatives:
        """The message as Django's EmailMessage (what the anymail ESPs are given)."""
        return self.prepared.email()


@dataclass
class Rendered:
    """A message's email rendered for its recipient, before tracking and wrapping."""

    email: RenderedEmail
    token: str
    urls: dict[str, str]


def render(
    message: Message, *, workspace: Workspace, template: EmailTemplate, contact: dict[str, Any], event: dict[str, Any]
) -> Rendered:
    """The message's email rendered for its recipient. Raises TemplateProblem when the
    template cannot be rendered for this recipient."""
    token = message_token(message.pk)
    urls = message_urls(message, token)
    context = email_context(workspace=workspace, contact=contact, event=event, urls=urls)
    email = render_email(template, context, subject=message.subject_override, preheader=message.preheader_override)
    return Rendered(email, token, urls)


def wrap(
    message: Message,
    rendered: Rendered,
    *,
    workspace: Workspace,
    delivery_settings: DeliverySettings | TrackingRules,
    sender: SenderIdentity | None,
    to_email: str,
) -> Composed:
    """The rendered email tracked and wrapped for the hand-over (its MIME bytes are written
    when a transport asks: PreparedEmail.as_bytes)."""
    email = rendered.email
    html, links = track_html(email.html, message=message, settings=delivery_settings, token=rendered.token)
    prepared = _Prepared(
        from_email=sender_from_header(sender, workspace),
        to=to_email,
        reply_to=sender.reply_to if sender is not None else "",
        subject=email.subject,
        text=email.text,
        html=html,
        headers=compliance_headers(message, rendered.urls),
        metadata={ESP_MESSAGE_ID: str(message.pk)},
    )
    return Composed(prepared, email.subject, links)


def compose(
    message: Message,
    *,
    workspace: Workspace,
    template: EmailTemplate,
    contact: dict[str, Any],
    event: dict[str, Any],
    delivery_settings: DeliverySettings,
    sender: SenderIdentity | None,
    to_email: str,
) -> Composed:
    """Render, track and wrap one message (`render`, then `wrap`). Raises TemplateProblem when
    the template cannot be rendered for this recipient; does no database writes."""
    rendered = render(message, workspace=workspace, template=template, contact=contact, event=event)
    return wrap(
        message, rendered, workspace=workspace, delivery_settings=delivery_settings, sender=sender, to_email=to_email
    )
