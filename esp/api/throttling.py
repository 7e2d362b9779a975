"""Rate limits counted in Redis, shared by all web processes.

A fixed window per caller: one pipelined INCR + EXPIRE, atomic in Redis, so concurrent requests
cannot all read the same count and slip through together (DRF's SimpleRateThrottle reads a
list, appends and writes it back). A Redis outage lets requests through and logs it: the
database-backed API must keep answering while the broker is down (/healthz reports it)."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from esp.models import ApiKey
from esp.net import client_limit_key

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


def window_hit(name: str, limit: int, period: int) -> float | None:
    """Counts one request of `name` in the current window: None when it is within `limit`,
    else the seconds until the window ends. None as well when Redis cannot be reached."""
    now = time.time()
    key = cache.make_and_validate_key(f"throttle:{name}:{int(now // period)}")
    try:
        client = cache._cache.get_client(key, write=True)  # type: ignore[attr-defined]  # Django's RedisCache
        pipeline = client.pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, period + 1)
        count = int(pipeline.execute()[0])
    except Exception:  # any cache failure: count nothing, refuse nothing
        logger.warning("rate limit %s not counted: cache unavailable", name.split(":")[0], exc_info=True)
        return None
    if count > limit:
        return float(max(1, math.ceil(period - now % period)))
    return None


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per key (API_RATE_LIMIT). Browser sessions count per person, anonymous callers
    (and callers whose key was refused, see failed_auth_throttle) per address."""

    scope = "api_key"
    num_requests: int | None
    duration: int | None
    _wait: float | None = None

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.auth, ApiKey):
            return f"api_key:{request.auth.pk}"
        if request.user is not None and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"anon:{self.get_ident(request)}"

    def get_ident(self, request: Request) -> str:
        # X-Forwarded-For counts only from a trusted proxy: anyone else could name a new
        # address with every request and never be throttled.
        return client_limit_key(request.META) or "unknown"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None or self.num_requests is None or self.duration is None:
            return True
        name = self.get_cache_key(request, view)
        if name is None:
            return True
        self._wait = window_hit(name, self.num_requests, self.duration)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


def refused_key_wait(address: str) -> float | None:
    """Counts a refused credential against the caller's address on the anonymous budget (the
    REST API's and the tracking API's alike), so guessing keys is throttled like any other call.
    None while within it; else the seconds to wait."""
    throttle = ApiKeyRateThrottle()
    if throttle.num_requests is None or throttle.duration is None:
        return None
    return window_hit(f"anon:{address}", throttle.num_requests, throttle.duration)


def failed_auth_throttle(request: Request) -> None:
    # Authentication fails before DRF's throttles run: counted here instead.
    wait = refused_key_wait(client_limit_key(request.META) or "unknown")
    if wait is not None:
        raise exceptions.Throttled(wait, detail=_("Too many requests with a refused API key from this address."))
