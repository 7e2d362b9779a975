"""The outbound guard: connections made on a tenant's behalf (SMTP hosts, ESP API URLs, later
webhooks) never reach loopback, private, link-local or metadata addresses — checked on the
address resolved at connect time — unless the operator allowed the host by name."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.test import Client

from campaigns.models import Provider
from campaigns.providers.base import PermanentSendError
from campaigns.providers.registry import transport_for
from campaigns.providers.services import provider_create, provider_send_test
from campaigns.providers.smtp import SmtpTransport
from esp import net
from esp.models import Workspace


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.1", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "239.1.2.3",  # noqa: S104
        "240.0.0.1", "255.255.255.255", "198.18.0.1",
        "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.1.2.3",
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    ],
)  # fmt: skip
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert net.address_is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert net.address_is_public(ipaddress.ip_address(address)) is True


class _Listener:
    """A TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.socket.settimeout(0.3)
        self.port = int(self.socket.getsockname()[1])

    def accepted(self) -> bool:
        try:
            connection, _ = self.socket.accept()
        except TimeoutError:
            return False
        connection.close()
        return True


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.socket.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _smtp_open_error(host: str, port: int) -> str:
    transport = SmtpTransport({"host": host, "port": port, "timeout": 2})
    with pytest.raises(PermanentSendError) as refused:
        transport.open()
    transport.close()
    return refused.value.message


def test_smtp_to_loopback_is_refused_and_says_nothing_of_what_listens(listener: _Listener) -> None:
    listening = _smtp_open_error("127.0.0.1", listener.port)
    closed = _smtp_open_error("127.0.0.1", _closed_port())
    assert listening == closed == f"SMTP: 127.0.0.1: {net.REFUSED_TEXT}"
    assert not listener.accepted()  # the guard refused before connecting
    # By a name resolving to loopback, too.
    assert _smtp_open_error("localhost", listener.port) == f"SMTP: localhost: {net.REFUSED_TEXT}"


def test_implicit_tls_smtp_goes_through_the_guard_too(listener: _Listener) -> None:
    assert _smtp_open_error_ssl(listener.port) == f"SMTP: 127.0.0.1: {net.REFUSED_TEXT}"
    assert not listener.accepted()


def _smtp_open_error_ssl(port: int) -> str:
    transport = SmtpTransport({"host": "127.0.0.1", "port": port, "use_ssl": True, "timeout": 2})
    with pytest.raises(PermanentSendError) as refused:
        transport.open()
    transport.close()
    return refused.value.message


def test_an_allowed_host_is_reached(listener: _Listener, settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    sock = net.outbound_connection(("127.0.0.1", listener.port), 2)
    sock.close()
    assert listener.accepted()


def test_dns_rebinding_is_refused_at_connect_time(
    listener: _Listener, monkeypatch: pytest.MonkeyPatch, acme: Workspace
) -> None:
    """The name resolves to a public address when the form checks it and to loopback when the
    worker connects: the connection goes only to an address checked at that moment."""
    answers = iter(["93.184.216.34", "127.0.0.1"])

    def resolve(host: str, port: int, type_: int = 0) -> list[tuple[Any, ...]]:
        assert host == "rebind.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(net, "_resolve", resolve)
    provider = provider_create(
        workspace=acme,
        name="Rebinding",
        kind="smtp",
        credentials={"host": "rebind.example", "port": listener.port, "timeout": 2},
    )
    result = provider_send_test(workspace=acme, provider_id=provider.pk, to_email="me@example.com")
    assert not result.ok and net.REFUSED_TEXT in result.message
    assert not listener.accepted()


class _Handler(http.server.BaseHTTPRequestHandler):
    requests_seen: list[str]
    redirect_to = ""

    def do_POST(self) -> None:
        self.requests_seen.append(self.path)
        if self.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"id": "<1@mg>", "message": "Queued"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _http_server(redirect_to: str = "") -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"requests_seen": seen, "redirect_to": redirect_to})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_session_refuses_loopback_and_every_redirect_is_checked(settings: Any) -> None:
    with _http_server() as (inside, inside_seen):
        with pytest.raises(requests.ConnectionError, match=net.REFUSED_TEXT):
            net.outbound_session().get(f"{inside}/latest/meta-data/", timeout=2)
        assert inside_seen == []
        # An allowed host that redirects to a host nobody allowed (the same loopback server by
        # another name): the redirect is refused when it connects.
        settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
        port = inside.rsplit(":", 1)[1]
        with _http_server(redirect_to=f"http://localhost:{port}/secret") as (allowed, allowed_seen):
            with pytest.raises(requests.ConnectionError, match=net.REFUSED_TEXT):
                net.outbound_session().post(f"{allowed}/v3/messages", timeout=2)
            assert allowed_seen == ["/v3/messages"]
        assert inside_seen == []
        assert net.outbound_session().get(f"{inside}/ok", timeout=2).status_code == 200


def test_an_esp_api_url_on_loopback_gets_nothing(acme: Workspace, settings: Any) -> None:
    """Mailgun's API URL pointed at a local service: send test posts nothing (no credentials
    leave) and shows nothing of the answer."""
    with _http_server() as (url, seen):
        settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # stored while allowed, then refused
        provider = provider_create(
            workspace=acme,
            name="Mailgun",
            kind="mailgun",
            credentials={"api_key": "key-secret-1", "sender_domain": "mg.example", "api_url": f"{url}/v3"},
        )
        with transport_for(Provider.objects.get(pk=provider.pk)) as transport:
            assert transport  # reachable while allowed: the fixture server is a fake Mailgun
        settings.OUTBOUND_ALLOWED_HOSTS = []
        result = provider_send_test(workspace=acme, provider_id=provider.pk, to_email="me@example.com")
        assert not result.ok and not result.transient
        assert net.REFUSED_TEXT in result.message and "Queued" not in result.message
        assert seen == []


@pytest.mark.parametrize(
    ("kind", "credentials", "field"),
    [
        ("smtp", {"host": "169.254.169.254", "port": 25, "timeout": 5}, "host"),
        ("smtp", {"host": "10.0.0.1", "port": 25, "timeout": 5}, "host"),
        ("smtp", {"host": "localhost", "port": 5432, "timeout": 5}, "host"),
        ("smtp", {"host": "::1", "port": 25, "timeout": 5}, "host"),
        ("mailgun", {"api_key": "k", "api_url": "http://169.254.169.254/latest"}, "api_url"),
        ("mailgun", {"api_key": "k", "api_url": "http://127.0.0.1:6379/v3"}, "api_url"),
    ],
)
@pytest.mark.django_db
def test_the_provider_form_refuses_private_destinations(
    acme: Workspace, acme_client: Client, kind: str, credentials: dict[str, Any], field: str
) -> None:
    data = {"kind": kind, "name": "Probe", "rate_limit": "0", **{f"cred_{k}": v for k, v in credentials.items()}}
    response = acme_client.post("/settings/sending/providers/new/", data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [f"cred_{field}"], errors
    assert "does not connect to private" in errors[f"cred_{field}"][0]
    assert not Provider.objects.in_workspace(acme).exists()


@pytest.mark.django_db
def test_the_operator_allows_a_named_relay(acme: Workspace, settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    provider = provider_create(workspace=acme, name="Relay", kind="smtp", credentials={"host": "localhost"})
    assert provider.pk
