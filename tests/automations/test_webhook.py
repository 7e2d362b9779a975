"""The webhook step: a signed POST a receiver can verify, delivered from rows with due_at and
retried with backoff while the enrollment has long gone on; SSRF targets refused when the step
is saved and again at the connection (after DNS, and no redirect followed)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from automations import webhooks
from automations.models import Enrollment, EnrollmentState, Series, TraceOutcome, WebhookDelivery
from automations.services import SeriesInput, series_create, series_webhook_secret_rotate
from automations.steps import STEP_KINDS
from campaigns.models import EmailTemplate
from esp import net
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, messages, outcomes, track


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next status given."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.location = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/esp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def _series(acme: Workspace, templates: dict[str, EmailTemplate], url: str) -> Series:
    return live_series(
        acme,
        [
            {"key": "crm", "type": "webhook", "url": url, "next": "hello"},
            {"key": "hello", "type": "send", "template": templates["welcome"].pk},
        ],
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
    )


def verify_as_a_receiver(secret: str, header: str, body: bytes, now: int) -> bool:
    """docs/webhooks.md's recipe, written out as a receiver would."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    if abs(now - timestamp) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.mark.usefixtures("local_outbound")
def test_a_signed_post_the_receiver_verifies_and_the_series_goes_on_at_once(
    acme: Workspace, templates: dict[str, EmailTemplate], receiver: Receiver, clock: Any
) -> None:
    series = _series(acme, templates, receiver.url)
    ann = contact(acme, "ann@example.com", external_id="u-1")
    track(ann, "Checkout Started", cart_id="c77", total=180)
    enrollment = Enrollment.objects.get(contact=ann)
    # Nothing was posted yet, and the enrollment did not wait for it.
    assert receiver.requests == []
    assert enrollment.state == EnrollmentState.COMPLETED
    assert len(messages(ann)) == 1
    assert ("crm", TraceOutcome.WEBHOOK, "") in outcomes(enrollment)

    assert webhooks.webhook_deliveries_run_all() == 1
    ((headers, body),) = receiver.requests
    now = int(clock.now().timestamp())
    assert verify_as_a_receiver(series.webhook_secret, headers["X-ESP-Signature"], body, now)
    assert webhooks.signature_valid(series.webhook_secret, headers["X-ESP-Signature"], body, now=now)
    assert not verify_as_a_receiver("0" * 64, headers["X-ESP-Signature"], body, now)
    assert not verify_as_a_receiver(series.webhook_secret, headers["X-ESP-Signature"], body + b" ", now)
    assert not webhooks.signature_valid(series.webhook_secret, headers["X-ESP-Signature"], body, now=now + 301)
    payload = json.loads(body)
    assert payload["contact"] == {"id": ann.pk, "email": "ann@example.com", "external_id": "u-1"}
    assert payload["series"] == {"id": series.pk, "name": series.name}
    assert payload["step"] == "crm"
    assert payload["enrollment"]["id"] == enrollment.pk
    assert payload["enrollment"]["entry_key"] == "c77"
    assert payload["data"] == {"cart_id": "c77", "total": 180}
    delivery = WebhookDelivery.objects.get(enrollment=enrollment)
    assert headers["X-ESP-Delivery"] == str(delivery.pk)
    assert delivery.delivered_at is not None and delivery.due_at is None and delivery.last_status == 200
    assert webhooks.webhook_deliveries_run_all() == 0  # delivered once

    # Rotating the secret signs later deliveries with the new one.
    new_secret = series_webhook_secret_rotate(workspace=acme, series_id=series.pk)
    assert len(new_secret) == 64 and new_secret != series.webhook_secret
    assert Series.objects.get(pk=series.pk).webhook_secret == new_secret


@pytest.mark.usefixtures("local_outbound")
def test_failures_are_retried_with_backoff_then_given_up_and_traced(
    acme: Workspace, templates: dict[str, EmailTemplate], receiver: Receiver, clock: Any
) -> None:
    _series(acme, templates, receiver.url)
    receiver.statuses = [500] * webhooks.MAX_ATTEMPTS
    bob = contact(acme, "bob@example.com")
    track(bob, "Checkout Started", cart_id="c1")
    delivery = WebhookDelivery.objects.get(enrollment__contact=bob)
    for attempt, wait in enumerate(webhooks.BACKOFF, start=1):
        assert webhooks.webhook_deliveries_run_all() == 1
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.last_status, delivery.last_error) == (attempt, 500, "HTTP 500")
        assert delivery.due_at == clock.now() + wait
        clock.advance(wait - webhooks.BACKOFF[0] / 2)
        assert webhooks.webhook_deliveries_run_all() == 0  # not yet due
        clock.advance(webhooks.BACKOFF[0] / 2)
    assert webhooks.webhook_deliveries_run_all() == 1
    delivery.refresh_from_db()
    assert delivery.attempts == webhooks.MAX_ATTEMPTS
    assert delivery.failed_at is not None and delivery.due_at is None and delivery.delivered_at is None
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS
    assert [h["X-ESP-Attempt"] for h, _b in receiver.requests] == [str(n) for n in range(1, 8)]
    assert {h["X-ESP-Delivery"] for h, _b in receiver.requests} == {str(delivery.pk)}
    failed = [o for o in outcomes(delivery.enrollment) if o[1] == TraceOutcome.FAILED]
    assert failed == [("crm", TraceOutcome.FAILED, "")]
    clock.advance(days=3)
    assert webhooks.webhook_deliveries_run_all() == 0


@pytest.mark.usefixtures("local_outbound")
def test_a_redirect_is_not_followed(
    acme: Workspace, templates: dict[str, EmailTemplate], receiver: Receiver, clock: Any
) -> None:
    _series(acme, templates, receiver.url)
    receiver.statuses = [302]
    receiver.location = "http://169.254.169.254/latest/meta-data/"
    cat = contact(acme, "cat@example.com")
    track(cat, "Checkout Started", cart_id="c2")
    webhooks.webhook_deliveries_run_all()
    delivery = WebhookDelivery.objects.get(enrollment__contact=cat)
    assert (delivery.last_status, delivery.last_error, delivery.delivered_at) == (302, "redirect not followed", None)
    assert len(receiver.requests) == 1


def _fake_dns(monkeypatch: Any, answers: dict[str, list[str]]) -> None:
    def resolve(host: str, port: int, type_: int = 0) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(f"{host} does not resolve")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(net, "_resolve", resolve)


@pytest.mark.usefixtures("clock")
def test_ssrf_targets_are_refused_when_the_step_is_saved(acme: Workspace, monkeypatch: Any) -> None:
    _fake_dns(
        monkeypatch,
        {
            "127.0.0.1": ["127.0.0.1"],
            "10.1.2.3": ["10.1.2.3"],
            "169.254.169.254": ["169.254.169.254"],
            "intranet.example.com": ["10.0.0.5"],
            "mixed.example.com": ["93.184.216.34", "192.168.1.10"],
        },
    )
    urls = {
        "loop": "http://127.0.0.1:8080/x",
        "private": "http://10.1.2.3/hook",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "named": "https://intranet.example.com/hook",
        "mixed": "https://mixed.example.com/hook",
        "scheme": "ftp://files.example.com/x",
    }
    keys = list(urls)
    steps = [
        {"key": key, "type": "webhook", "url": url, "next": keys[i + 1] if i + 1 < len(keys) else None}
        for i, (key, url) in enumerate(urls.items())
    ]
    with pytest.raises(ValidationError) as caught:
        series_create(workspace=acme, data=SeriesInput(name="SSRF", trigger={"type": "api"}, steps={"steps": steps}))
    assert set(caught.value.message_dict) == {f"steps[{key}].url" for key in urls}


def test_a_name_that_resolves_to_a_private_address_at_connect_time_is_refused(
    acme: Workspace, templates: dict[str, EmailTemplate], monkeypatch: Any, clock: Any
) -> None:
    # Public when the series is saved; the loopback and the metadata address when it is called
    # (DNS rebinding): the guard checks the address it connects to.
    _fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    _series(acme, templates, "https://hooks.example.com/esp")
    dee = contact(acme, "dee@example.com")
    eve = contact(acme, "eve@example.com")
    track(dee, "Checkout Started", cart_id="d")
    _fake_dns(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
    assert webhooks.webhook_deliveries_run_all() == 1
    track(eve, "Checkout Started", cart_id="e")
    _fake_dns(monkeypatch, {"hooks.example.com": ["169.254.169.254"]})
    assert webhooks.webhook_deliveries_run_all() == 1
    for person in (dee, eve):
        delivery = WebhookDelivery.objects.get(enrollment__contact=person)
        # Refused for good at the first attempt: no retry, and the trace says so.
        assert delivery.attempts == 1 and delivery.failed_at is not None and delivery.due_at is None
        assert delivery.last_error == "refused: the address is not allowed"
        assert ("crm", TraceOutcome.FAILED, "") in outcomes(delivery.enrollment)


def test_describe_names_the_host() -> None:
    assert STEP_KINDS["webhook"].describe({"url": "https://hooks.example.com/x?y=1"}) == (
        "call the webhook at hooks.example.com"
    )
