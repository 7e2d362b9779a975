"""The Segment-compatible tracking API at the site root: POST /v1/identify, /v1/track, /v1/page,
/v1/screen, /v1/alias, /v1/group, /v1/batch and /v1/import, answering 200 {"success": true} as
the spec does, so an unmodified Segment SDK works with its host set to our base URL.

Plain Django views, not DRF: this is the hottest path of the product (benchmarked by
bench/ingest.py), so the body is read once, parsed once with orjson, and handed to
audiences.ingest; the API key costs one indexed query and the rate limit one Redis round trip.
Errors keep the JSON shape of the REST API (esp/api/errors.py)."""

from __future__ import annotations

import logging
import zlib
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from audiences.ingest import BATCH_ENDPOINTS, MAX_BATCH_BYTES, IngestError, events_ingest, request_items
from esp.api.auth import key_from_header
from esp.api.errors import error_body
from esp.api.throttling import refused_key_wait, window_hit
from esp.input import json_problems
from esp.models import ApiKey, ApiScope
from esp.net import client_limit_key
from esp.services import api_key_authenticate

logger = logging.getLogger(__name__)

SUCCESS = b'{"success":true}'
# A gzip body is read up to this many bytes before it is inflated (and the inflated JSON is
# held to MAX_BATCH_BYTES): JSON that does not shrink under gzip is not sent by any SDK.
MAX_COMPRESSED_BYTES = MAX_BATCH_BYTES + 64 * 1024
# orjson refuses deeper documents itself (at 1024 levels).
MAX_TRACKING_DEPTH = 1024
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _error(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    return JsonResponse(error_body(status, code, message, fields), status=status)


def _unauthenticated(message: str) -> JsonResponse:
    response = _error(401, "not_authenticated", message)
    response["WWW-Authenticate"] = 'Basic realm="tracking"'
    return response


class _Refused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _read_body(request: HttpRequest) -> bytes:
    """The request's JSON, inflated when the SDK gzipped it, held to 500 KB."""
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise _Refused(
            _error(
                415,
                "unsupported_media_type",
                _("Content-Encoding %(value)r is not supported; send gzip or nothing.") % {"value": encoding},
            )
        )
    compressed = encoding == "gzip"
    cap = MAX_COMPRESSED_BYTES if compressed else MAX_BATCH_BYTES
    too_large = _error(
        413,
        "too_large",
        ngettext(
            "The request is larger than %(limit)s byte (500 KB); nothing was stored.",
            "The request is larger than %(limit)s bytes (500 KB); nothing was stored.",
            MAX_BATCH_BYTES,
        )
        % {"limit": f"{MAX_BATCH_BYTES:,}"},
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > cap:
        raise _Refused(too_large)
    raw = request.read(cap + 1)
    if len(raw) > cap:
        raise _Refused(too_large)
    if not compressed:
        return raw
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, MAX_BATCH_BYTES + 1)
    except zlib.error:
        raise _Refused(_error(400, "invalid", _("The body is not valid gzip."))) from None
    if len(body) > MAX_BATCH_BYTES or inflater.unconsumed_tail:
        raise _Refused(too_large)
    if not inflater.eof:
        raise _Refused(_error(400, "invalid", _("The gzip body is cut short.")))
    return body


def _authenticate(secret: str | None, request: HttpRequest) -> ApiKey:
    if not secret:
        raise _Refused(
            _unauthenticated(_("An API key is required: HTTP Basic with the key as user name, or 'Bearer <key>'."))
        )
    api_key = api_key_authenticate(secret)
    if api_key is None:
        wait = refused_key_wait(client_limit_key(request.META) or "unknown")
        if wait is not None:
            response = _error(429, "throttled", _("Too many requests with a refused API key from this address."))
            response["Retry-After"] = str(int(wait))
            raise _Refused(response)
        raise _Refused(_unauthenticated(_("This API key is unknown or has been revoked.")))
    if not api_key.has_scope(ApiScope.EVENTS_WRITE):
        raise _Refused(
            _error(
                403,
                "permission_denied",
                _("This API key lacks the scope %(scope)s.") % {"scope": ApiScope.EVENTS_WRITE},
            )
        )
    return api_key


def _rate() -> tuple[int, int]:
    count, _sep, period = settings.EVENTS_RATE_LIMIT.partition("/")
    return int(count), _PERIODS[period[0]]


def _throttle(api_key: ApiKey) -> None:
    """A fixed window per key in Redis, shared by all web processes: one pipelined INCR+EXPIRE.
    Fails open: a Redis outage must not stop ingestion (the events go to PostgreSQL)."""
    limit, period = _rate()
    waited = window_hit(f"events:{api_key.pk}", limit, period)
    if waited is not None:
        wait = int(waited)
        response = _error(
            429,
            "throttled",
            ngettext(
                "Too many requests for this API key; retry in %(n)d second.",
                "Too many requests for this API key; retry in %(n)d seconds.",
                wait,
            )
            % {"n": wait},
        )
        response["Retry-After"] = str(wait)
        raise _Refused(response)


@method_decorator(csrf_exempt, name="dispatch")
class TrackingView(View):
    """One endpoint of the tracking API; `endpoint` is the message type, or batch / import."""

    endpoint = ""

    def post(self, request: HttpRequest) -> HttpResponse:
        received_at = timezone.now()
        batch = self.endpoint in BATCH_ENDPOINTS
        try:
            header = request.META.get("HTTP_AUTHORIZATION", "")
            secret = key_from_header(header.encode("latin-1")) if header else None
            if header and secret is None:
                raise _Refused(
                    _unauthenticated(
                        _("Use HTTP Basic with the API key as user name, or 'Authorization: Bearer <key>'.")
                    )
                )
            # Keys in the header are checked before the body is read; SDKs that put the write
            # key in the body (`writeKey`) are served after it is parsed.
            api_key = _authenticate(secret, request) if secret else None
            if api_key is None and request.user.is_authenticated:
                # A browser session is never accepted here (the views are CSRF exempt): refused
                # like any API call the caller's credentials do not allow.
                raise _Refused(_error(403, "permission_denied", _("The tracking API takes an API key only.")))
            if api_key is not None:
                _throttle(api_key)
            body = _read_body(request)
            try:
                payload: Any = orjson.loads(body)
            except orjson.JSONDecodeError as error:
                if api_key is None:
                    _authenticate(None, request)  # no key anywhere: a 401 says more than the body's fault
                raise _Refused(
                    _error(400, "invalid", _("The body is not valid JSON: %(error)s") % {"error": error})
                ) from None
            if api_key is None:
                write_key = payload.get("writeKey") if isinstance(payload, dict) else None
                api_key = _authenticate(write_key if isinstance(write_key, str) else None, request)
                _throttle(api_key)
            # Only a body that spells the escape can hold NUL (orjson refuses raw control
            # characters and lone surrogates itself), so the common body costs one byte search.
            if b"\\u0000" in body:
                problems = json_problems(payload, max_depth=MAX_TRACKING_DEPTH)
                if problems:
                    raise _Refused(_error(400, "invalid", _("Some fields are not valid."), problems))
            items = request_items(self.endpoint, payload)
            events_ingest(workspace=api_key.workspace, items=items, received_at=received_at, body=body)
        except _Refused as refused:
            return refused.response
        except IngestError as error:
            code = "too_large" if error.status == 413 else "invalid"
            return _error(error.status, code, error.message, error.fields(batch=batch))
        return HttpResponse(SUCCESS, content_type="application/json")
