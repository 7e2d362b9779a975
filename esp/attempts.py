"""Limits on attempts that an attacker repeats: failed logins, password-reset requests,
sign-ups, invitations, public subscriptions.

Each limit is a counter in the shared Redis cache per (what, who) — an account, an address,
an IP — over a fixed window: `cache.add` starts it with the window as its lifetime and
`cache.incr` counts atomically, so concurrent requests on several web processes cannot slip
past a read-then-write. Several limits on one key with growing windows give back-off: a few
tries a minute, fewer an hour. When Redis is down the limits fail open (logged): a login page
that refuses everyone because the cache is down is worse than one that does not count."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.cache import cache

logger = logging.getLogger("esp.security")


@dataclass(frozen=True)
class Limit:
    """At most `count` attempts per `seconds` for one value of `scope` (e.g. one account)."""

    scope: str
    count: int
    seconds: int


# Failed logins. Per (account, IP) strict with back-off: the attacker's own address is slowed
# down first. Per account looser and short: an attacker spreading over many addresses is
# slowed, and the real owner is kept out for minutes at most. Per IP: one address trying
# many accounts.
LOGIN_ACCOUNT_IP = (Limit("login-account-ip", 5, 60), Limit("login-account-ip-15m", 10, 15 * 60))
LOGIN_ACCOUNT = (Limit("login-account", 30, 5 * 60),)
LOGIN_IP = (Limit("login-ip", 30, 5 * 60), Limit("login-ip-1h", 100, 3600))
# Password-reset mail per address (each one lands in a real person's inbox) and per IP.
RESET_ADDRESS = (Limit("reset-address", 3, 3600),)
RESET_IP = (Limit("reset-ip", 10, 3600),)
# New accounts (and workspaces) per IP.
SIGNUP_IP = (Limit("signup-ip", 5, 3600), Limit("signup-ip-1d", 20, 24 * 3600))
# Invitation mails per inviting user, and attempts to accept (guessing tokens) per IP.
INVITE_USER = (Limit("invite-user", 20, 3600), Limit("invite-user-1d", 100, 24 * 3600))
INVITE_ACCEPT_IP = (Limit("invite-accept-ip", 20, 3600),)
# Public subscribe forms per IP (each post may mail a confirmation to anyone's address).
SUBSCRIBE_IP = (Limit("subscribe-ip", 10, 3600), Limit("subscribe-ip-1d", 50, 24 * 3600))


def _key(limit: Limit, value: str) -> str:
    # Hashed: addresses and e-mail addresses stay out of Redis and keys stay short.
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"attempts:{limit.scope}:{digest}"


def _pairs(checks: Iterable[tuple[Iterable[Limit], str | None]]) -> list[tuple[Limit, str]]:
    return [(limit, value) for limits, value in checks if value for limit in limits]


def hit(checks: Iterable[tuple[Iterable[Limit], str | None]]) -> int | None:
    """Count this attempt against every limit and say whether it may go ahead: None, or the
    seconds to wait. Counting first and reading the count incr() returned makes the limit
    exact under concurrency: of many requests at once, only `count` get through."""
    waits = []
    try:
        for limit, value in _pairs(checks):
            key = _key(limit, value)
            cache.add(key, 0, timeout=limit.seconds)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between the two calls: a new window
                cache.add(key, 1, timeout=limit.seconds)
                count = 1
            if count > limit.count:
                waits.append(limit.seconds)
    except Exception:  # any cache failure: fail open
        logger.warning("attempt limits unavailable (cache down): not enforced", exc_info=True)
        return None
    return max(waits) if waits else None


def forgive(checks: Iterable[tuple[Iterable[Limit], str | None]]) -> None:
    """Take back an attempt `hit` counted that turned out well (a right password)."""
    try:
        for limit, value in _pairs(checks):
            try:
                cache.decr(_key(limit, value))
            except ValueError:
                pass  # the window ended meanwhile
    except Exception:  # any cache failure: fail open
        logger.warning("attempt limits unavailable (cache down): not forgiven", exc_info=True)


def clear(checks: Iterable[tuple[Iterable[Limit], str | None]]) -> None:
    try:
        cache.delete_many([_key(limit, value) for limit, value in _pairs(checks)])
    except Exception:
        logger.warning("attempt limits unavailable (cache down): not cleared", exc_info=True)


def minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))
