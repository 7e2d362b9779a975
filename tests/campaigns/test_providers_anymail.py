"""The anymail ESP transports, with `requests` answered at the transport level by the ESPs'
documented responses: the provider id comes from the ESP, one HTTP session serves a whole
batch, and errors are classified (429/5xx and network errors transient, other 4xx permanent)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
import requests
from django.core.mail import EmailMultiAlternatives

from campaigns.models import Provider
from campaigns.providers import PermanentSendError, TransientSendError, transport_for
from campaigns.providers.anymail_esp import AnymailTransport, classify_anymail_error
from campaigns.providers.services import provider_create
from esp.mail import WORKSPACE_HEADER
from esp.models import Workspace

HAS_BOTO3 = importlib.util.find_spec("boto3") is not None

# anymail warns that it no longer officially supports SendGrid; its backend still works.
pytestmark = [
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
    pytest.mark.usefixtures("local_outbound"),  # the fake ESP APIs listen on loopback
]


@dataclass
class FakeApi:
    """Stands in for requests.Session.request: records each call, answers from a script."""

    status: int = 200
    body: Any = None
    error: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)

    def __call__(self, session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.sessions.append(id(session))
        self.calls.append({"method": method, "url": url, "session": session, **kwargs})
        if self.error is not None:
            raise self.error
        response = requests.Response()
        response.status_code = self.status
        response.reason = {200: "OK", 201: "Created", 202: "Accepted"}.get(self.status, "Error")
        response.url = url
        response.encoding = "utf-8"
        response.headers["Content-Type"] = "application/json"
        response._content = b"" if self.body is None else json.dumps(self.body).encode()
        return response


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    with mock.patch.object(requests.Session, "request", autospec=True, side_effect=fake):
        yield fake


def mail(to: str = "anna@example.com") -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject="Hello",
        body="Plain",
        from_email="Acme <news@mg.acme.example>",
        to=[to],
        headers={WORKSPACE_HEADER: "1"},
    )
    message.attach_alternative("<p>Hello</p>", "text/html")
    return message


# kind -> (credentials, a success answer as the ESP documents it, the id it names the message by)
ESPS: dict[str, tuple[dict[str, Any], int, Any, str]] = {
    "mailgun": (
        {"api_key": "key-mailgun-secret", "sender_domain": "mg.acme.example"},
        200,
        {"id": "<20240101120000.1.ABCD@mg.acme.example>", "message": "Queued. Thank you."},
        "<20240101120000.1.ABCD@mg.acme.example>",
    ),
    "postmark": (
        {"server_token": "pm-server-token"},
        200,
        {
            "To": "anna@example.com",
            "SubmittedAt": "2024-01-01T12:00:00.0000000Z",
            "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
            "ErrorCode": 0,
            "Message": "OK",
        },
        "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
    ),
    "sparkpost": (
        {"api_key": "sp-api-key"},
        200,
        {"results": {"total_rejected_recipients": 0, "total_accepted_recipients": 1, "id": "11668787484950529"}},
        "11668787484950529",
    ),
    "brevo": (
        {"api_key": "xkeysib-brevo"},
        201,
        {"messageId": "<202401011200.12345678901@smtp-relay.mailin.fr>"},
        "<202401011200.12345678901@smtp-relay.mailin.fr>",
    ),
    "mailjet": (
        {"api_key": "mj-public", "secret_key": "mj-secret"},
        200,
        {
            "Messages": [
                {
                    "Status": "success",
                    "CustomID": "",
                    "To": [
                        {
                            "Email": "anna@example.com",
                            "MessageUUID": "cb927469-36fd-4c02-bce4-0d199929a207",
                            "MessageID": 70650219165027410,
                            "MessageHref": "https://api.mailjet.com/v3/REST/message/70650219165027410",
                        }
                    ],
                    "Cc": [],
                    "Bcc": [],
                }
            ]
        },
        "70650219165027410",
    ),
    "resend": (
        {"api_key": "re_123456789"},
        200,
        {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"},
        "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794",
    ),
}


def _provider(workspace: Workspace, kind: str, credentials: dict[str, Any]) -> Provider:
    return provider_create(workspace=workspace, name=kind, kind=kind, credentials=credentials)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(ESPS))
def test_the_esp_id_is_returned_and_one_session_serves_the_batch(acme: Workspace, api: FakeApi, kind: str) -> None:
    credentials, status, body, expected_id = ESPS[kind]
    api.status, api.body = status, body
    transport = transport_for(_provider(acme, kind, credentials))
    assert isinstance(transport, AnymailTransport)
    transport.open()
    ids = [transport.send(mail()) for _ in range(3)]
    transport.close()

    assert ids == [expected_id] * 3
    assert len(api.calls) == 3 and len(set(api.sessions)) == 1
    # The internal workspace marker never reaches the ESP.
    assert all(WORKSPACE_HEADER not in json.dumps(call.get("data") or "") for call in api.calls)


@pytest.mark.django_db
def test_mailgun_gets_the_decrypted_key_and_domain(acme: Workspace, api: FakeApi) -> None:
    credentials, status, body, _expected = ESPS["mailgun"]
    api.status, api.body = status, body
    with transport_for(_provider(acme, "mailgun", credentials)) as transport:
        transport.send(mail())
    (call,) = api.calls
    assert call["url"] == "https://api.mailgun.net/v3/mg.acme.example/messages"
    assert call["auth"] == ("api", "key-mailgun-secret")


@pytest.mark.django_db
def test_postmark_gets_the_server_token(acme: Workspace, api: FakeApi) -> None:
    credentials, status, body, _expected = ESPS["postmark"]
    api.status, api.body = status, body
    with transport_for(_provider(acme, "postmark", credentials)) as transport:
        transport.send(mail())
    assert api.calls[0]["headers"]["X-Postmark-Server-Token"] == "pm-server-token"


@pytest.mark.django_db
def test_sendgrid_answers_202_without_a_body_and_anymail_names_the_message(acme: Workspace, api: FakeApi) -> None:
    api.status, api.body = 202, None
    with transport_for(_provider(acme, "sendgrid", {"api_key": "SG.secret"})) as transport:
        first, second = transport.send(mail()), transport.send(mail())
    assert api.calls[0]["headers"]["Authorization"] == "Bearer SG.secret"
    # SendGrid returns no id: anymail sends its own (a UUID in the personalization's custom_args,
    # which SendGrid's events echo back) and reports it.
    sent = json.loads(api.calls[0]["data"])
    assert sent["personalizations"][0]["custom_args"]["anymail_id"] == first
    assert len(first) == 36 and first != second


ERRORS = [
    (400, {"message": "'from' parameter is not a valid address"}, PermanentSendError),
    (401, {"message": "Invalid private key"}, PermanentSendError),
    (403, {"message": "Domain not allowed"}, PermanentSendError),
    (429, {"message": "Too many requests"}, TransientSendError),
    (500, {"message": "Internal error"}, TransientSendError),
    (503, {"message": "Service unavailable"}, TransientSendError),
]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["mailgun", "postmark", "sendgrid"])
@pytest.mark.parametrize(("status", "body", "expected"), ERRORS)
def test_http_errors_are_classified(
    acme: Workspace, api: FakeApi, kind: str, status: int, body: Any, expected: type[Exception]
) -> None:
    credentials = ESPS[kind][0] if kind in ESPS else {"api_key": "SG.secret"}
    api.status, api.body = status, body
    with transport_for(_provider(acme, kind, credentials)) as transport, pytest.raises(expected) as error:
        transport.send(mail())
    assert type(error.value) is expected
    assert error.value.code == status  # type: ignore[attr-defined]
    assert body["message"] in str(error.value)  # the ESP's own words


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["mailgun", "postmark", "sendgrid"])
def test_network_errors_are_transient(acme: Workspace, api: FakeApi, kind: str) -> None:
    credentials = ESPS[kind][0] if kind in ESPS else {"api_key": "SG.secret"}
    api.error = requests.ConnectionError("Connection refused")
    with transport_for(_provider(acme, kind, credentials)) as transport, pytest.raises(TransientSendError):
        transport.send(mail())


def _real_error(url: str) -> requests.RequestException:
    """What requests really raises for `url` (unpatched: the `api` fixture is not active here)."""
    try:
        requests.post(url, timeout=5)
    except requests.RequestException as error:
        return error
    raise AssertionError(f"{url} answered")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def hanging_up_server() -> Iterator[str]:
    """A server that takes the request and closes the connection without an answer: the ESP
    may have taken the message."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = server.accept()
                connection.recv(65536)
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v3/messages"
    server.close()


@pytest.mark.django_db
def test_an_esp_never_reached_is_safe_to_retry_one_that_hung_up_is_not(acme: Workspace, hanging_up_server: str) -> None:
    refused = _real_error(f"http://127.0.0.1:{_closed_port()}/v3/messages")
    hung_up = _real_error(hanging_up_server)
    with mock.patch.object(requests.Session, "request", autospec=True, side_effect=FakeApi(error=refused)):
        with transport_for(_provider(acme, "mailgun", ESPS["mailgun"][0])) as transport:
            with pytest.raises(TransientSendError) as never_sent:
                transport.send(mail())
    assert never_sent.value.maybe_delivered is False and never_sent.value.code is None
    with mock.patch.object(requests.Session, "request", autospec=True, side_effect=FakeApi(error=hung_up)):
        with transport_for(_provider(acme, "postmark", ESPS["postmark"][0])) as transport:
            with pytest.raises(TransientSendError) as maybe_sent:
                transport.send(mail())
    assert maybe_sent.value.maybe_delivered is None  # the send loop leaves it in doubt


@pytest.mark.skipif(not HAS_BOTO3, reason="boto3 is not installed")
def test_amazon_connection_errors_say_whether_the_request_left() -> None:
    """SES errors reach us as anymail API errors caused by botocore's: no connection is safe
    to retry, a read timeout may have delivered."""
    from anymail.exceptions import AnymailAPIError
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    endpoint = "https://email.eu-west-1.amazonaws.com"
    expected = {EndpointConnectionError: False, ConnectTimeoutError: False, ReadTimeoutError: None}
    for botocore_error, maybe_delivered in expected.items():
        try:
            try:
                raise botocore_error(endpoint_url=endpoint)
            except botocore_error as cause:
                raise AnymailAPIError(str(cause)) from cause
        except AnymailAPIError as error:
            failure = classify_anymail_error(error)
        assert type(failure) is TransientSendError and failure.maybe_delivered is maybe_delivered, botocore_error


@pytest.mark.django_db
def test_postmark_inactive_recipient_is_permanent(acme: Workspace, api: FakeApi) -> None:
    """Postmark answers 422 with ErrorCode 406 for a recipient it marked inactive (bounced)."""
    api.status = 422
    api.body = {
        "ErrorCode": 406,
        "Message": "You tried to send to a recipient that has been marked as inactive. Found inactive addresses: "
        "anna@example.com. Inactive recipients are ones that have generated a hard bounce or a spam complaint.",
    }
    with transport_for(_provider(acme, "postmark", ESPS["postmark"][0])) as transport:
        with pytest.raises(PermanentSendError) as error:
            transport.send(mail())
    assert error.value.code == 422
    assert "marked as inactive" in str(error.value)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("Throttling", 400, TransientSendError),
        ("TooManyRequestsException", 429, TransientSendError),
        ("InternalFailure", 500, TransientSendError),
        ("MessageRejected", 400, PermanentSendError),
        ("AccountSuspendedException", 400, PermanentSendError),
    ],
)
def test_amazon_errors_are_classified_by_code(code: str, status: int, expected: type[Exception]) -> None:
    """SES errors reach us as anymail API errors caused by a botocore ClientError."""
    from anymail.exceptions import AnymailAPIError

    class ClientError(Exception):  # the shape of botocore.exceptions.ClientError
        def __init__(self) -> None:
            super().__init__(f"An error occurred ({code}) when calling the SendEmail operation")
            self.response = {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}}

    try:
        try:
            raise ClientError()
        except ClientError as cause:
            raise AnymailAPIError(str(cause)) from cause
    except AnymailAPIError as error:
        assert type(classify_anymail_error(error)) is expected


@pytest.mark.django_db
@pytest.mark.skipif(HAS_BOTO3, reason="boto3 is installed: SES sends for real (see the test below)")
def test_amazon_ses_without_boto3_says_so(acme: Workspace) -> None:
    provider = _provider(
        acme,
        "amazon_ses",
        {"region_name": "eu-west-1", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "ses-secret"},
    )
    transport = transport_for(provider)
    with pytest.raises(PermanentSendError) as error:
        transport.open()
    assert "boto3" in str(error.value)


@pytest.mark.django_db
@pytest.mark.skipif(
    not HAS_BOTO3,
    reason="boto3 is not installed (requirements.txt pins django-anymail without the amazon-ses extra), "
    "so SES sending cannot be exercised here; the SES kind, its form and its error classification are tested",
)
def test_amazon_ses_sends_through_boto3(acme: Workspace) -> None:  # pragma: no cover - needs boto3
    from botocore.stub import Stubber  # type: ignore[import-not-found]

    provider = _provider(
        acme,
        "amazon_ses",
        {"region_name": "eu-west-1", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "ses-secret"},
    )
    transport = transport_for(provider)
    assert isinstance(transport, AnymailTransport)
    transport.open()
    backend: Any = transport.backend
    with Stubber(backend.client) as stubber:
        stubber.add_response("send_email", {"MessageId": "0100018d-ses-id"})
        assert transport.send(mail()) == "0100018d-ses-id"
    transport.close()


def _queue_receipts(workspace: Workspace, provider: Provider, count: int) -> None:
    from audiences.models import Contact
    from campaigns.delivery.services import messages_enqueue
    from campaigns.models import EmailTemplate, MessageClass

    people = [Contact.objects.create(workspace=workspace, email=f"p{n}@example.com") for n in range(count)]
    receipt = EmailTemplate.objects.create(
        workspace=workspace, name="Receipt", subject="Your order", mjml="<mjml><mj-body></mj-body></mjml>",
        message_class=MessageClass.TRANSACTIONAL,
    )  # fmt: skip
    messages_enqueue(
        workspace=workspace, source="tx:1", contacts=Contact.objects.filter(pk__in=[p.pk for p in people]),
        template=receipt, message_class=MessageClass.TRANSACTIONAL, provider=provider,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_batch_for_an_unreachable_esp_goes_back_to_the_queue_not_in_doubt(acme: Workspace) -> None:
    from campaigns.delivery.sender import messages_send_due
    from campaigns.models import Message

    _queue_receipts(acme, _provider(acme, "mailgun", ESPS["mailgun"][0]), 3)
    fake = FakeApi(error=_real_error(f"http://127.0.0.1:{_closed_port()}/v3/messages"))
    with mock.patch.object(requests.Session, "request", autospec=True, side_effect=fake):
        assert messages_send_due() == 3
    # Nothing left in doubt: all three wait for a retry, and the ESP was tried once, not three times.
    assert sorted(Message.objects.values_list("state", "attempts")) == [("queued", 1)] * 3
    assert len(fake.calls) == 1


@pytest.mark.django_db
def test_the_esp_gets_our_message_id_as_metadata_for_its_webhooks(acme: Workspace, api: FakeApi) -> None:
    from campaigns.delivery.sender import messages_send_due
    from campaigns.models import Message

    credentials, api.status, api.body, provider_id = ESPS["postmark"]
    _queue_receipts(acme, _provider(acme, "postmark", credentials), 1)
    messages_send_due()
    message = Message.objects.get()
    assert (message.state, message.provider_message_id) == ("sent", provider_id)
    (call,) = api.calls
    assert json.loads(call["data"])["Metadata"] == {"esp_message_id": str(message.pk)}
