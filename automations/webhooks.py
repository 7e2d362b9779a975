"""Outbound webhooks of series steps: signed, delivered from rows with `due_at`, retried with
backoff.

A webhook step only writes a WebhookDelivery row (in the run's transaction, so it exists once
per enrollment and step whatever runs the step twice) and the enrollment goes on at once. The
beat tick claims due rows with `FOR UPDATE SKIP LOCKED` and leases them (moves `due_at` past
the time a delivery can take) in a short transaction of its own, then posts outside any
transaction: a slow receiver holds no lock, and a worker that dies mid-post leaves a row that
falls due again when its lease ends. So a receiver may, rarely, see one delivery twice: it
tells them apart by the X-ESP-Delivery header.

Signing (docs/webhooks.md says how a receiver checks it):

    X-ESP-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under the series' secret>

Every connection goes through the outbound guard (esp.net): loopback, private, link-local and
metadata addresses are refused after DNS, and redirects are not followed (a 3xx is a failed
attempt), so no redirect can lead the request anywhere the URL did not name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from django.db import connection, transaction

from automations.models import Trace, TraceOutcome
from esp import clock
from esp.net import OutboundRefused, outbound_session

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ESP-Signature"
DELIVERY_HEADER = "X-ESP-Delivery"
ATTEMPT_HEADER = "X-ESP-Attempt"
# (connect, read) seconds: a receiver that wants more time should answer at once and work later.
TIMEOUT = (3.0, 5.0)
# Wait after the attempt of that number fails; after the last, the delivery has failed.
BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=6),
    dt.timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
# Longer than a batch can take (TIMEOUT per post, PARALLEL at a time): a claimed row is not
# claimed again while its worker is still posting.
LEASE = dt.timedelta(minutes=2)
BATCH_SIZE = 40
PARALLEL = 8
# A test call from the builder: how much of the answer is shown, read for at most how long.
EXCERPT_BYTES = 2000
EXCERPT_SECONDS = 2.0


def body_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes posted and signed."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-ESP-Signature value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_valid(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (docs/webhooks.md): the HMAC matches and the timestamp is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True)
class _Claimed:
    id: int
    workspace_id: int
    enrollment_id: int
    series_id: int
    step_key: str
    url: str
    body: dict[str, Any]
    attempts: int
    secret: str


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    status: int | None
    error: str
    final: bool = False  # no retry (a refused address)


def webhook_deliveries_claim(*, limit: int = BATCH_SIZE, now: dt.datetime | None = None) -> list[_Claimed]:
    """Lease a batch of due deliveries (one short transaction; SKIP LOCKED shares them out
    between ticks) and count the attempt."""
    now = now or clock.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH due AS (
                SELECT id FROM automations_webhookdelivery
                WHERE due_at <= %(now)s AND delivered_at IS NULL AND failed_at IS NULL
                ORDER BY due_at LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            )
            UPDATE automations_webhookdelivery d SET due_at = %(lease)s, attempts = d.attempts + 1
            FROM due, automations_enrollment e, automations_series s
            WHERE d.id = due.id AND e.id = d.enrollment_id AND s.id = e.series_id
            RETURNING d.id, d.workspace_id, d.enrollment_id, s.id, d.step_key, d.url, d.body, d.attempts,
                      s.webhook_secret
            """,
            {"now": now, "limit": limit, "lease": now + LEASE},
        )
        rows = cursor.fetchall()
    return [
        _Claimed(id_, ws, enrollment, series, step, url, body if isinstance(body, dict) else json.loads(body),
                 attempts, secret)
        for id_, ws, enrollment, series, step, url, body, attempts, secret in rows
    ]  # fmt: skip


def _refused(error: BaseException) -> bool:
    """Whether the guard refused the address somewhere under this requests error (it is
    wrapped by urllib3 and requests on the way up)."""
    seen: set[int] = set()
    todo: list[Any] = [error]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OutboundRefused):
            return True
        todo += [getattr(item, "__cause__", None), getattr(item, "__context__", None), getattr(item, "reason", None)]
        todo += [arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException)]
    return False


def _headers(secret: str, body: bytes, now: dt.datetime, *, delivery: str, attempt: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "mini-ESP-webhooks/1",
        SIGNATURE_HEADER: signature(secret, int(now.timestamp()), body),
        DELIVERY_HEADER: delivery,
        ATTEMPT_HEADER: str(attempt),
    }


def _read_some(response: requests.Response, limit: int) -> bytes:
    """At most `limit` bytes of the answer, read for at most EXCERPT_SECONDS (one socket read
    at a time, so a receiver that trickles its answer cannot hold the reader longer)."""
    read = b""
    deadline = time.monotonic() + EXCERPT_SECONDS
    try:
        while len(read) < limit and time.monotonic() < deadline:
            chunk = response.raw.read1(limit - len(read), decode_content=True)
            if not chunk:
                break
            read += chunk
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        pass  # the status came; an answer cut short keeps what was read
    return read[:limit]


def _send(url: str, body: bytes, headers: dict[str, str], *, excerpt_bytes: int = 0) -> tuple[_Outcome, bytes]:
    """One POST through the outbound guard, no redirect followed, within TIMEOUT: the outcome
    and, when asked, the first `excerpt_bytes` of the answer (read as it comes, so a receiver
    that answers without end is not read to its end)."""
    excerpt = b""
    try:
        # A session per post: the posts of a batch run in threads, and a Session is not shared.
        with outbound_session() as session:
            response = session.post(
                url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False, stream=bool(excerpt_bytes)
            )
            try:
                excerpt = _read_some(response, excerpt_bytes) if excerpt_bytes else b""
            finally:
                response.close()
    except requests.RequestException as error:
        if _refused(error):
            return _Outcome(False, None, "refused: the address is not allowed", final=True), b""
        return _Outcome(False, None, f"{type(error).__name__}"), b""
    if 200 <= response.status_code < 300:
        return _Outcome(True, response.status_code, ""), excerpt
    if 300 <= response.status_code < 400:
        return _Outcome(False, response.status_code, "redirect not followed"), excerpt
    return _Outcome(False, response.status_code, f"HTTP {response.status_code}"), excerpt


def _post(delivery: _Claimed, now: dt.datetime) -> _Outcome:
    body = body_bytes(delivery.body)
    headers = _headers(delivery.secret, body, now, delivery=str(delivery.id), attempt=delivery.attempts)
    return _send(delivery.url, body, headers)[0]


def webhook_deliveries_run(*, limit: int = BATCH_SIZE) -> int:
    """One batch: claim, post (a few at a time), record. How many were attempted."""
    claimed = webhook_deliveries_claim(limit=limit)
    if not claimed:
        return 0
    now = clock.now()
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(claimed))) as pool:
        outcomes = list(pool.map(lambda delivery: _post(delivery, now), claimed))
    _record(list(zip(claimed, outcomes, strict=True)), clock.now())
    return len(claimed)


def webhook_deliveries_run_all(*, max_batches: int = 100) -> int:
    total = 0
    for _batch in range(max_batches):
        ran = webhook_deliveries_run()
        total += ran
        if ran < BATCH_SIZE:
            break
    return total


def _record(results: Iterable[tuple[_Claimed, _Outcome]], now: dt.datetime) -> None:
    """Delivered, due again after its backoff, or failed for good (traced on the enrollment)."""
    ids, delivered, failed, due, statuses, errors = [], [], [], [], [], []
    traces = []
    for delivery, outcome in results:
        ids.append(delivery.id)
        statuses.append(outcome.status)
        errors.append(outcome.error[:400])
        gave_up = not outcome.delivered and (outcome.final or delivery.attempts >= MAX_ATTEMPTS)
        delivered.append(now if outcome.delivered else None)
        failed.append(now if gave_up else None)
        due.append(None if outcome.delivered or gave_up else now + BACKOFF[delivery.attempts - 1])
        if gave_up:
            logger.warning("webhook %s to %s failed: %s", delivery.id, delivery.url, outcome.error)
            traces.append(
                Trace(
                    workspace_id=delivery.workspace_id,
                    enrollment_id=delivery.enrollment_id,
                    series_id=delivery.series_id,
                    step_key=delivery.step_key,
                    ran_at=now,
                    outcome=TraceOutcome.FAILED,
                    reason=f"webhook failed after {delivery.attempts} attempt(s): {outcome.error}"[:400],
                )
            )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE automations_webhookdelivery d SET delivered_at = v.delivered, failed_at = v.failed,
                    due_at = v.due, last_status = v.status, last_error = v.error
                FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::int[],
                            %s::text[]) AS v(id, delivered, failed, due, status, error)
                WHERE d.id = v.id
                """,
                [ids, delivered, failed, due, statuses, errors],
            )
        Trace.objects.bulk_create(traces)


# --- a test call from the builder -------------------------------------------------------------

TEST_CONTACT = {"id": None, "email": "alex@example.com", "external_id": "test"}


@dataclass(frozen=True)
class WebhookTestResult:
    """What a test call got back. `problem` names what went wrong: "" (an answer came),
    "refused" (the outbound guard), "timeout", "connection" or "redirect" (not followed)."""

    delivered: bool  # a 2xx: a real call would count as delivered
    status: int | None
    problem: str
    error: str  # the connection error's name, for "connection"
    excerpt: str
    milliseconds: int


def webhook_test_body(*, series_id: int, series_name: str, step_key: str, data: dict[str, Any]) -> dict[str, Any]:
    """A delivery's body (automations/steps/webhook.py) for nobody in particular, marked as a test."""
    return {
        "test": True,
        "series": {"id": series_id, "name": series_name},
        "step": step_key,
        "enrollment": {"id": None, "entry_key": "test", "entered_at": clock.now().isoformat()},
        "contact": dict(TEST_CONTACT),
        "data": data,
    }


def webhook_test_call(*, url: str, secret: str, body: dict[str, Any]) -> WebhookTestResult:
    """POST `body`, signed with the series' secret, to `url` once, the way a delivery is posted
    (the outbound guard, TIMEOUT, no redirect followed), with no row and no retry. The URL is
    checked by the webhook step's clean first; the guard checks it again at the connection.
    X-ESP-Delivery is "test-…", new for each call."""
    raw = body_bytes(body)
    headers = _headers(secret, raw, clock.now(), delivery=f"test-{uuid.uuid4().hex[:12]}", attempt=1)
    started = time.monotonic()
    outcome, excerpt = _send(url, raw, headers, excerpt_bytes=EXCERPT_BYTES)
    milliseconds = round((time.monotonic() - started) * 1000)
    if outcome.status is None:
        problem = "refused" if outcome.final else "timeout" if "Timeout" in outcome.error else "connection"
    else:
        problem = "redirect" if 300 <= outcome.status < 400 else ""
    return WebhookTestResult(
        delivered=outcome.delivered,
        status=outcome.status,
        problem=problem,
        error=outcome.error if problem == "connection" else "",
        excerpt=excerpt.decode("utf-8", errors="replace"),
        milliseconds=milliseconds,
    )
