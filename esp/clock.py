"""The one "now" of the engine and the send road.

Series waits, goals, smart sending and quiet hours all compare against this clock, and the SQL
that decides what is due takes it as a parameter (never `now()` in the statement), so a test
moves time forward instead of sleeping, and a whole series of days runs in milliseconds.

Production never sets it: `now()` is `timezone.now()`. A test sets a frozen instant with
`freeze()` and moves it with `advance()`; `thaw()` goes back to the real clock. The setting is
per process (a worker started by a test runs on real time).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    return _frozen if _frozen is not None else timezone.now()


def freeze(at: dt.datetime | None = None) -> dt.datetime:
    """Stop the clock at `at` (default: the real now); returns the instant."""
    global _frozen
    _frozen = at if at is not None else timezone.now()
    return _frozen


def advance(delta: dt.timedelta | None = None, **units: float) -> dt.datetime:
    """Move a frozen clock forward by `delta` or by keyword units (hours=4, days=1)."""
    global _frozen
    if _frozen is None:
        raise RuntimeError("the clock is not frozen: freeze() it first")
    _frozen = _frozen + (delta if delta is not None else dt.timedelta(**units))
    return _frozen


def thaw() -> None:
    global _frozen
    _frozen = None


def is_frozen() -> bool:
    return _frozen is not None
