"""A provider's messages-per-second limit, shared by every worker process on every machine.

GCRA (the "virtual scheduling" form of a token bucket without burst): Redis keeps, per
provider, the earliest time the next message may go. Each call reserves the next slot
atomically in a Lua script — using Redis's clock, so workers on machines whose clocks differ
still agree — and gets back how long to sleep until that slot. N messages at R per second so
take (N - 1) / R seconds however many workers share them, without a burst at a window edge.

The state lives in the broker's Redis: the one server every worker already shares. (The cache
database would do as well in production, but it is flushed by `cache.clear()`.)
"""

from __future__ import annotations

import threading
import time

import redis
from django.conf import settings
from redis.commands.core import Script

# KEYS[1]: the provider's key; ARGV[1]: microseconds between two messages.
# Returns {the reserved slot, microseconds to wait for it}, both by Redis's clock.
_RESERVE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local next_slot = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_slot), 'PX', math.floor((next_slot - now) / 1000) + 1000)
return {slot, slot - now}
"""

_lock = threading.Lock()
_scripts: dict[str, Script] = {}


def redis_url() -> str:
    """redis-py's spelling of the broker URL (the embedded server is a unix socket)."""
    url = str(settings.CELERY_BROKER_URL)
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url


def _script() -> Script:
    """The slot script bound to a client for the current broker URL (one pool per process)."""
    url = redis_url()
    with _lock:
        script = _scripts.get(url)
        if script is None:
            script = _scripts[url] = redis.Redis.from_url(url).register_script(_RESERVE_SLOT)
        return script


def key_for(provider_id: int) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "esp")
    return f"{prefix}:ratelimit:provider:{provider_id}"


def rate_limit_wait(provider_id: int, per_second: int) -> int | None:
    """Block until this process may send one message through the provider. 0 = no limit.
    Returns the slot it reserved (microseconds since the epoch by Redis's clock), or None
    without a limit: slots are what the limit guarantees, whenever the caller wakes up."""
    if per_second <= 0:
        return None
    interval_us = max(1, 1_000_000 // per_second)
    slot, wait_us = (int(value) for value in _script()(keys=[key_for(provider_id)], args=[interval_us]))
    if wait_us > 0:
        time.sleep(wait_us / 1_000_000)
    return slot
