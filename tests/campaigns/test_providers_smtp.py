"""The SMTP and outbox transports against a real SMTP server (aiosmtpd, started by the test):
one connection per batch, reconnect once when the server dropped it before DATA, replies
classified (4xx transient, 5xx permanent), server down transient."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from django.core.mail import EmailMultiAlternatives

from campaigns.models import Provider
from campaigns.providers import PermanentSendError, TransientSendError, transport_for
from campaigns.providers.services import provider_create
from campaigns.providers.smtp import SmtpTransport
from esp.mail import WORKSPACE_HEADER
from esp.models import OutboxMessage, Workspace
from tests.campaigns.smtp_servers import ehlo_offering_pipelining

# Their SMTP sinks and fake ESP APIs listen on loopback.
pytestmark = pytest.mark.usefixtures("local_outbound")


@dataclass
class Received:
    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class SinkHandler:
    """Accepts everything except the addresses and DATA replies a test scripts."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)  # consumed one per DATA
    drop_during_data: bool = False
    data_attempts: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_attempts += 1
        if self.drop_during_data:
            # The message was transmitted, the connection drops before the reply.
            server.transport.close()
            return "250 never seen"
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(
            Received(tuple(session.peer), envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 2.0.0 Accepted"

    @property
    def connections(self) -> int:
        """Distinct client connections that delivered mail (each has its own source port)."""
        return len({r.peer for r in self.received})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 in a thread; `restart()` drops every open connection."""

    def __init__(self, **smtp_options: Any) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self.smtp_options = smtp_options
        self.controller = self._controller()

    def _controller(self) -> Controller:
        return Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.smtp_options)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        self.controller.stop()
        self.controller = self._controller()
        self.controller.start()

    def credentials(self, **extra: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "use_tls": False, "timeout": 5, **extra}

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def mail(to: str = "anna@example.com", subject: str = "Hello", **kwargs: Any) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject, body="Plain text part", from_email='"Acme Shop" <news@acme.example>', to=[to], **kwargs
    )
    message.attach_alternative("<p>HTML part</p>", "text/html")
    return message


def test_three_messages_go_over_one_connection(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.credentials())
    transport.open()
    ids = [transport.send(mail(to=f"r{i}@example.com", subject=f"Message {i}")) for i in range(3)]
    transport.close()

    assert [r.rcpt_tos for r in smtp_sink.received] == [["r0@example.com"], ["r1@example.com"], ["r2@example.com"]]
    assert smtp_sink.handler.connections == 1
    # The provider id is the Message-ID header the server received, made with the From domain.
    assert [r.message["Message-ID"] for r in smtp_sink.received] == ids
    assert all(i.startswith("<") and i.endswith("@acme.example>") for i in ids)
    assert len(set(ids)) == 3


def test_the_message_arrives_intact_and_without_internal_headers(smtp_sink: SmtpSink) -> None:
    message = mail(subject="Скидка 20 % для вас", headers={WORKSPACE_HEADER: "7", "Message-ID": "<given@acme.example>"})
    message.from_email = '"Магазин Acme" <news@acme.example>'
    with SmtpTransport(smtp_sink.credentials()) as transport:
        provider_id = transport.send(message)

    assert provider_id == "<given@acme.example>"
    (received,) = smtp_sink.received
    parsed = received.message
    assert parsed["Subject"] == "Скидка 20 % для вас"
    assert parsed["From"].addresses[0].display_name == "Магазин Acme"
    assert received.mail_from == "news@acme.example"
    assert parsed["Message-ID"] == "<given@acme.example>"
    assert WORKSPACE_HEADER not in parsed
    parts = {part.get_content_type(): part.get_content().strip() for part in parsed.iter_parts()}
    assert parts == {"text/plain": "Plain text part", "text/html": "<p>HTML part</p>"}


def test_550_is_permanent_and_the_connection_stays_usable(smtp_sink: SmtpSink) -> None:
    smtp_sink.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 No such user here"
    with SmtpTransport(smtp_sink.credentials()) as transport:
        with pytest.raises(PermanentSendError) as refused:
            transport.send(mail(to="gone@example.com"))
        transport.send(mail(to="anna@example.com"))

    assert refused.value.code == 550
    assert "No such user here" in refused.value.message
    assert [r.rcpt_tos for r in smtp_sink.received] == [["anna@example.com"]]
    assert smtp_sink.handler.connections == 1


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "expected", "code"),
    [
        ("451 4.7.1 Greylisted, try again later", None, TransientSendError, 451),
        (None, "451 4.3.0 Temporary local problem", TransientSendError, 451),
        (None, "452 4.3.1 Insufficient system storage", TransientSendError, 452),
        (None, "554 5.7.1 Message rejected as spam", PermanentSendError, 554),
        (None, "552 5.3.4 Message too big", PermanentSendError, 552),
    ],
)
def test_replies_are_classified_by_their_code(
    smtp_sink: SmtpSink, rcpt_reply: str | None, data_reply: str | None, expected: type[Exception], code: int
) -> None:
    if rcpt_reply:
        smtp_sink.handler.rcpt_replies["anna@example.com"] = rcpt_reply
    if data_reply:
        smtp_sink.handler.data_replies.append(data_reply)
    with SmtpTransport(smtp_sink.credentials()) as transport, pytest.raises(expected) as error:
        transport.send(mail())
    assert type(error.value) is expected
    assert error.value.code == code  # type: ignore[attr-defined]
    assert (rcpt_reply or data_reply or "")[4:] in str(error.value)
    assert smtp_sink.received == []


def test_server_down_is_transient() -> None:
    transport = SmtpTransport({"host": "127.0.0.1", "port": free_port(), "timeout": 2})
    with pytest.raises(TransientSendError):
        transport.open()
    with pytest.raises(TransientSendError):
        transport.send(mail())  # opens lazily, fails the same way
    transport.close()


def test_a_connection_dropped_between_messages_is_reopened_once(smtp_sink: SmtpSink) -> None:
    with SmtpTransport(smtp_sink.credentials()) as transport:
        transport.send(mail(to="first@example.com"))
        smtp_sink.restart()  # the server drops the idle connection (as after its idle timeout)
        transport.send(mail(to="second@example.com"))
        transport.send(mail(to="third@example.com"))

    assert [r.rcpt_tos[0] for r in smtp_sink.received] == [
        "first@example.com",
        "second@example.com",
        "third@example.com",
    ]
    assert smtp_sink.handler.connections == 2  # the second connection carried both later messages


def test_a_connection_dropped_during_data_is_not_resent(smtp_sink: SmtpSink) -> None:
    """The server may have taken the message: sending it again here could deliver it twice."""
    smtp_sink.handler.drop_during_data = True
    with SmtpTransport(smtp_sink.credentials()) as transport, pytest.raises(TransientSendError):
        transport.send(mail())
    assert smtp_sink.handler.data_attempts == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_uses_the_stored_credentials() -> None:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"relay-user", b"s3cret-pass")
        return AuthResult(success=ok, handled=False)

    # PLAIN only: smtplib would try LOGIN after a refused PLAIN, which aiosmtpd answers slowly.
    sink = SmtpSink(
        authenticator=authenticator, auth_require_tls=False, auth_required=True, auth_exclude_mechanism=["LOGIN"]
    )
    sink.start()
    try:
        with SmtpTransport(sink.credentials(username="relay-user", password="s3cret-pass")) as transport:
            transport.send(mail())
        assert len(sink.received) == 1
        wrong = SmtpTransport(sink.credentials(username="relay-user", password="wrong"))
        with pytest.raises(PermanentSendError) as error:
            wrong.open()
        assert error.value.code == 535
    finally:
        sink.stop()


@pytest.mark.django_db
def test_transport_for_an_smtp_provider_uses_its_decrypted_settings(acme: Workspace, smtp_sink: SmtpSink) -> None:
    provider = provider_create(workspace=acme, name="Relay", kind="smtp", credentials=smtp_sink.credentials())
    transport = transport_for(Provider.objects.get(pk=provider.pk))
    assert isinstance(transport, SmtpTransport)
    with transport:
        transport.send(mail())
    assert len(smtp_sink.received) == 1


@pytest.mark.django_db
def test_the_outbox_stores_the_message_under_the_workspace(acme: Workspace) -> None:
    with transport_for(None, workspace_id=acme.pk) as transport:
        provider_id = transport.send(mail(to="anna@example.com", subject="Stored"))

    stored = OutboxMessage.objects.get()
    assert (stored.workspace_id, stored.to, stored.subject) == (acme.pk, ["anna@example.com"], "Stored")
    assert stored.headers["Message-ID"] == provider_id
    assert WORKSPACE_HEADER not in stored.headers
    assert (stored.text_body, stored.html_body) == ("Plain text part", "<p>HTML part</p>")


@pytest.mark.django_db
def test_an_outbox_provider_files_under_its_own_workspace(acme: Workspace) -> None:
    provider = provider_create(workspace=acme, name="Outbox", kind="outbox", credentials={})
    message = mail()
    with transport_for(provider) as transport:
        transport.send(message)
    assert OutboxMessage.objects.get().workspace_id == acme.pk
    assert WORKSPACE_HEADER not in message.extra_headers  # the caller's message is left as it came


# --- the send loop's path: written bytes, PIPELINING ----------------------------------------


@dataclass
class PipeliningHandler(SinkHandler):
    """Also offers PIPELINING (RFC 2920), as production MTAs do: the transport then sends MAIL,
    RCPT and DATA in one write."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        return ehlo_offering_pipelining(session, hostname, responses)


@pytest.fixture
def pipelining_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.handler = PipeliningHandler()
    sink.controller = sink._controller()
    sink.start()
    yield sink
    sink.stop()


def prepared(to: str = "anna@example.com", subject: str = "Hello") -> Any:
    from campaigns.delivery.composer import _Prepared

    return _Prepared(
        from_email='"Магазин Acme" <news@acme.example>',
        to=to,
        reply_to="",
        subject=subject,
        text="Plain text part\n.a line that starts with a dot\n",
        html="<p>HTML part</p>",
        headers={"List-Unsubscribe": "<https://x.test/e/u/abc>"},
        metadata={"esp_message_id": "1"},
    )


def writes_of(transport: SmtpTransport, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the transport writes to the socket, one item per write."""
    sent: list[bytes] = []
    transport.open()
    connection = transport.backend.connection
    assert connection is not None
    original = connection.send

    def send(data: bytes | str) -> None:
        sent.append(data.encode() if isinstance(data, str) else data)
        original(data)

    monkeypatch.setattr(connection, "send", send)
    return sent


@pytest.mark.parametrize("offers_pipelining", [True, False])
def test_a_prepared_message_arrives_as_written(
    offers_pipelining: bool, smtp_sink: SmtpSink, pipelining_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = pipelining_sink if offers_pipelining else smtp_sink
    message = prepared(subject="Скидка 20 % для вас")
    transport = SmtpTransport(sink.credentials())
    writes = writes_of(transport, monkeypatch)
    provider_id = transport.send_prepared(message)
    transport.send_prepared(prepared(to="ben@example.com"))
    transport.close()

    assert provider_id == message.message_id
    first, second = sink.received
    assert (first.mail_from, first.rcpt_tos, second.rcpt_tos) == (
        "news@acme.example",
        ["anna@example.com"],
        ["ben@example.com"],
    )
    # The bytes the composer wrote, dot-stuffed on the wire and unstuffed by the server.
    assert first.content.replace(b"\r\n", b"\n") == message.as_bytes().replace(b"\r\n", b"\n")
    parsed = first.message
    assert parsed["Subject"] == "Скидка 20 % для вас"
    assert parsed["From"].addresses[0].display_name == "Магазин Acme"
    assert parsed["List-Unsubscribe"] == "<https://x.test/e/u/abc>"
    plain = parsed.get_body(("plain",))
    assert plain is not None
    assert ".a line that starts with a dot" in plain.get_content()
    envelope = [w for w in writes if w.lower().startswith(b"mail from")]
    size = len(message.as_bytes())
    if offers_pipelining:
        # Envelope and DATA in one write; the data itself after the 354.
        assert (
            envelope[0]
            == f"mail FROM:<news@acme.example> size={size}\r\nrcpt TO:<anna@example.com>\r\ndata\r\n".encode()
        )
    else:
        assert envelope[0] == f"mail FROM:<news@acme.example> size={size}\r\n".encode()
        assert b"rcpt TO:<anna@example.com>\r\n" in writes and b"data\r\n" in writes


@pytest.mark.parametrize(
    ("reply", "error"),
    [("550 5.1.1 No such user here", PermanentSendError), ("451 4.3.0 Try later", TransientSendError)],
)
def test_a_pipelined_refusal_is_classified_and_the_connection_stays_usable(
    reply: str, error: type[Exception], pipelining_sink: SmtpSink
) -> None:
    pipelining_sink.handler.rcpt_replies["gone@example.com"] = reply
    with SmtpTransport(pipelining_sink.credentials()) as transport:
        with pytest.raises(error) as refused:
            transport.send_prepared(prepared(to="gone@example.com"))
        transport.send_prepared(prepared(to="anna@example.com"))

    assert refused.value.code == int(reply[:3])  # type: ignore[attr-defined]
    assert f"gone@example.com: {reply}" in refused.value.message  # type: ignore[attr-defined]
    assert [r.rcpt_tos for r in pipelining_sink.received] == [["anna@example.com"]]
    assert pipelining_sink.handler.connections == 1


def test_a_pipelined_data_refusal_is_permanent(pipelining_sink: SmtpSink) -> None:
    pipelining_sink.handler.data_replies.append("554 5.6.0 Message content rejected")
    with SmtpTransport(pipelining_sink.credentials()) as transport:
        with pytest.raises(PermanentSendError) as refused:
            transport.send_prepared(prepared())
        transport.send_prepared(prepared(to="ben@example.com"))

    assert refused.value.code == 554
    assert [r.rcpt_tos for r in pipelining_sink.received] == [["ben@example.com"]]


def test_a_pipelined_drop_before_the_data_is_sent_again_once(pipelining_sink: SmtpSink) -> None:
    """The server closed the connection between two batches: nothing was handed over, the
    message goes out on a fresh connection."""
    with SmtpTransport(pipelining_sink.credentials()) as transport:
        transport.send_prepared(prepared(to="first@example.com"))
        pipelining_sink.restart()
        transport.send_prepared(prepared(to="second@example.com"))

    assert [r.rcpt_tos for r in pipelining_sink.received] == [["first@example.com"], ["second@example.com"]]
    assert pipelining_sink.handler.connections == 2


def test_a_pipelined_drop_during_the_data_is_transient_and_not_resent(pipelining_sink: SmtpSink) -> None:
    pipelining_sink.handler.drop_during_data = True
    with SmtpTransport(pipelining_sink.credentials()) as transport:
        with pytest.raises(TransientSendError) as failed:
            transport.send_prepared(prepared())

    assert failed.value.code is None  # no reply: the sender keeps it in doubt
    assert pipelining_sink.handler.data_attempts == 1


# --- the next message's envelope ahead, with this one's data (one round trip a message) ------


def test_the_next_envelope_travels_with_the_data(pipelining_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, third = (prepared(to=f"{name}@example.com") for name in ("anna", "ben", "cleo"))
    transport = SmtpTransport(pipelining_sink.credentials())
    writes = writes_of(transport, monkeypatch)
    transport.send_prepared(first, second)
    transport.send_prepared(second, third)
    transport.send_prepared(third)
    transport.close()

    assert [r.rcpt_tos for r in pipelining_sink.received] == [
        ["anna@example.com"],
        ["ben@example.com"],
        ["cleo@example.com"],
    ]
    assert pipelining_sink.handler.connections == 1
    envelopes = [w for w in writes if b"rcpt TO:" in w]
    # The first envelope alone; each later one at the end of the write that ends the previous
    # message's data; the last data alone.
    assert envelopes[0].startswith(b"mail FROM:<news@acme.example>")
    assert envelopes[1].endswith(
        b"\r\n.\r\nmail FROM:<news@acme.example> size=%d\r\nrcpt TO:<ben@example.com>\r\ndata\r\n"
        % len(second.as_bytes())
    )
    assert envelopes[2].endswith(b"rcpt TO:<cleo@example.com>\r\ndata\r\n")
    # EHLO, the first envelope, three data writes, QUIT: one write (and one round trip) a message.
    assert len(writes) == 6 and writes[-2].endswith(b"\r\n.\r\n") and writes[-1] == b"quit\r\n"


def test_a_message_whose_envelope_went_ahead_is_not_delivered_without_its_own_send(
    pipelining_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send loop names the next message, then does not hand it over (its row was taken
    back by recovery, or the batch ran out of time): the server was left waiting for its data,
    so the connection is dropped, which abandons it."""
    transport = SmtpTransport(pipelining_sink.credentials())
    first_connection = writes_of(transport, monkeypatch)
    transport.send_prepared(prepared(to="anna@example.com"), prepared(to="skipped@example.com"))
    transport.send_prepared(prepared(to="cleo@example.com"))  # not the one announced
    transport.send_prepared(prepared(to="dan@example.com"), prepared(to="never@example.com"))
    transport.close()  # with an envelope ahead: no QUIT, which the server would take for data

    assert [r.rcpt_tos for r in pipelining_sink.received] == [
        ["anna@example.com"],
        ["cleo@example.com"],
        ["dan@example.com"],
    ]
    assert pipelining_sink.handler.connections == 2
    assert pipelining_sink.handler.data_attempts == 3
    # Nothing more on the connection that waits for the skipped message's data (not even QUIT,
    # which it would take for data): it was dropped at once.
    assert first_connection[-1].endswith(b"rcpt TO:<skipped@example.com>\r\ndata\r\n")


def test_a_server_gone_when_a_new_connection_is_needed_took_nothing(pipelining_sink: SmtpSink) -> None:
    """The envelope that went ahead is abandoned with its connection; the server is down when
    the next message needs a new one: that message was handed over to nobody (not in doubt)."""
    transport = SmtpTransport(pipelining_sink.credentials())
    transport.send_prepared(prepared(to="anna@example.com"), prepared(to="skipped@example.com"))
    pipelining_sink.stop()
    try:
        with pytest.raises(TransientSendError) as failed:
            transport.send_prepared(prepared(to="cleo@example.com"))
    finally:
        pipelining_sink.controller = pipelining_sink._controller()
        pipelining_sink.start()

    assert failed.value.code is None and failed.value.maybe_delivered is False
    assert [r.rcpt_tos for r in pipelining_sink.received] == [["anna@example.com"]]


@pytest.mark.parametrize(
    ("reply", "error"),
    [("550 5.1.1 No such user here", PermanentSendError), ("451 4.3.0 Try later", TransientSendError)],
)
def test_a_refused_envelope_ahead_fails_its_own_send_only(
    reply: str, error: type[Exception], pipelining_sink: SmtpSink
) -> None:
    pipelining_sink.handler.rcpt_replies["gone@example.com"] = reply
    gone = prepared(to="gone@example.com")
    with SmtpTransport(pipelining_sink.credentials()) as transport:
        transport.send_prepared(prepared(to="anna@example.com"), gone)
        with pytest.raises(error) as refused:
            transport.send_prepared(gone, prepared(to="ben@example.com"))
        transport.send_prepared(prepared(to="ben@example.com"))

    assert refused.value.code == int(reply[:3])  # type: ignore[attr-defined]
    assert [r.rcpt_tos for r in pipelining_sink.received] == [["anna@example.com"], ["ben@example.com"]]
    assert pipelining_sink.handler.connections == 1


def test_a_data_refusal_leaves_the_envelope_that_went_with_it_standing(pipelining_sink: SmtpSink) -> None:
    pipelining_sink.handler.data_replies.append("554 5.6.0 Message content rejected")
    following = prepared(to="ben@example.com")
    with SmtpTransport(pipelining_sink.credentials()) as transport:
        with pytest.raises(PermanentSendError) as refused:
            transport.send_prepared(prepared(), following)
        transport.send_prepared(following)

    assert refused.value.code == 554
    assert [r.rcpt_tos for r in pipelining_sink.received] == [["ben@example.com"]]
    assert pipelining_sink.handler.connections == 1


def test_a_drop_during_the_data_keeps_the_message_in_doubt_and_the_next_starts_over(pipelining_sink: SmtpSink) -> None:
    pipelining_sink.handler.drop_during_data = True
    following = prepared(to="ben@example.com")
    with SmtpTransport(pipelining_sink.credentials()) as transport:
        with pytest.raises(TransientSendError) as failed:
            transport.send_prepared(prepared(), following)
        pipelining_sink.handler.drop_during_data = False
        transport.send_prepared(following)

    assert failed.value.code is None  # no reply: the sender keeps it in doubt
    assert [r.rcpt_tos for r in pipelining_sink.received] == [["ben@example.com"]]


def test_a_server_without_pipelining_gets_each_envelope_in_turn(smtp_sink: SmtpSink) -> None:
    following = prepared(to="ben@example.com")
    with SmtpTransport(smtp_sink.credentials()) as transport:
        transport.send_prepared(prepared(), following)
        transport.send_prepared(following)

    assert [r.rcpt_tos for r in smtp_sink.received] == [["anna@example.com"], ["ben@example.com"]]
    assert smtp_sink.handler.connections == 1


class _RefusingData(SMTP):
    """Answers DATA with 451 while `refusing` holds, before any content (no PIPELINING)."""

    refusing = [True]

    async def smtp_DATA(self, arg: str) -> None:
        if self.refusing[0]:
            await self.push("451 4.3.2 Not now")
            return
        await super().smtp_DATA(arg)


class _RefusingDataController(Controller):
    def factory(self) -> SMTP:
        return _RefusingData(self.handler, **self.SMTP_kwargs)


def test_a_refused_data_command_leaves_the_connection_ready_for_the_next_message() -> None:
    """The envelope stands until RSET: without one, the next MAIL would be refused as nested."""
    sink = SmtpSink()
    sink.controller = _RefusingDataController(sink.handler, hostname="127.0.0.1", port=sink.port)
    sink.start()
    try:
        with SmtpTransport(sink.credentials()) as transport:
            with pytest.raises(TransientSendError) as refused:
                transport.send_prepared(prepared(to="first@example.com"))
            _RefusingData.refusing[0] = False
            transport.send_prepared(prepared(to="second@example.com"))
    finally:
        _RefusingData.refusing[0] = True
        sink.stop()

    assert refused.value.code == 451
    assert [r.rcpt_tos for r in sink.received] == [["second@example.com"]]
    assert sink.handler.connections == 1


@pytest.mark.django_db
def test_the_outbox_stores_a_prepared_message_as_it_stores_an_email(acme: Workspace) -> None:
    message = prepared(subject="Stored")
    provider_id = transport_for(None, workspace_id=acme.pk).send_prepared(message)

    row = OutboxMessage.objects.get(workspace=acme)
    assert provider_id == message.message_id
    assert (row.from_email, row.to, row.subject) == (
        '"Магазин Acme" <news@acme.example>',
        ["anna@example.com"],
        "Stored",
    )
    assert (row.text_body, row.html_body) == (message.text, "<p>HTML part</p>")
    assert row.headers == {"List-Unsubscribe": "<https://x.test/e/u/abc>", "Message-ID": message.message_id}
