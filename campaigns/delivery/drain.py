"""Draining the queue from Celery: how many workers send at once, and who starts them.

A drain (task `campaigns.send_messages`) sends due messages until none is left or its time
budget is spent, then re-enqueues itself, so no task runs for long (a worker restart or a
deploy loses little) and other tasks get their turn. Drains are started after commit by
whoever queues messages, and by a beat tick every few seconds, which is what picks up quiet-
hours delays and retry backoffs when they fall due (DESIGN rule 2: the database holds time).

At most SEND_CONCURRENCY drains run at once, each holding a slot in Redis (the broker's
server, which every worker shares). A drain that finds every slot taken exits at once, so
ticks and enqueues never pile up behind a long send. Slots expire unless renewed, and a slot
whose holder is a process of this machine that no longer exists (kill -9) is taken over at
once. Correctness does not rest on the slots (the database's claims do that); they only keep
the number of senders right.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
from django.conf import settings

from campaigns.delivery.sender import messages_send_due

logger = logging.getLogger(__name__)

SLOT_TTL_SECONDS = 60
RENEW_EVERY_SECONDS = 10
# A drain gives its slot up after this long and queues a successor.
DRAIN_BUDGET_SECONDS = 60.0

# KEYS[1] slot, ARGV[1] holder: delete / extend only when still held by that holder.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end return 0"
_TAKE_OVER = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end "
    "return 0"
)

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def _redis() -> redis.Redis:
    url = str(settings.CELERY_BROKER_URL)
    if url.startswith("redis+socket://"):
        url = "unix://" + url.removeprefix("redis+socket://")
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, decode_responses=True)
        return client


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'esp')}:campaigns:drain"


def concurrency() -> int:
    return max(1, int(getattr(settings, "SEND_CONCURRENCY", 2)))


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _holder_is_dead(holder: str) -> bool:
    """A holder on this machine whose process is gone (its slot is free at once). A killed
    process may linger as a zombie until its parent (or init) reaps it: that is gone too."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        stat = Path(f"/proc/{pid_text}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        stat = ""
    if stat:
        return stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Slot:
    def __init__(self, key: str, holder: str) -> None:
        self.key, self.holder = key, holder
        self.renewed = time.monotonic()

    def renew(self) -> bool:
        """Extend the slot (at most every RENEW_EVERY_SECONDS); False when it was lost."""
        if time.monotonic() - self.renewed < RENEW_EVERY_SECONDS:
            return True
        self.renewed = time.monotonic()
        return bool(_redis().eval(_RENEW, 1, self.key, self.holder, SLOT_TTL_SECONDS))

    def release(self) -> None:
        _redis().eval(_RELEASE, 1, self.key, self.holder)


def slot_acquire() -> Slot | None:
    client = _redis()
    holder = _holder()
    for number in range(concurrency()):
        key = f"{_prefix()}:slot:{number}"
        if client.set(key, holder, nx=True, ex=SLOT_TTL_SECONDS):
            return Slot(key, holder)
        current = client.get(key)
        if current and _holder_is_dead(str(current)):
            if client.eval(_TAKE_OVER, 1, key, current, holder, SLOT_TTL_SECONDS):
                return Slot(key, holder)
    return None


def slots_busy() -> int:
    client = _redis()
    return sum(1 for number in range(concurrency()) if client.exists(f"{_prefix()}:slot:{number}"))


def messages_drain(
    *, enqueue_more: Callable[[], None], budget_seconds: float = DRAIN_BUDGET_SECONDS, batch_size: int = 100
) -> int:
    """One drain, as the task runs it. `enqueue_more` queues another drain (a helper while the
    queue is long, or the successor when the budget is spent). Returns messages claimed."""
    client = _redis()
    wanted = f"{_prefix()}:wanted"
    # Raised before trying: a drain that is about to give its slot up sees it and goes on, so a
    # message queued just as the last drain finishes does not wait for the next tick.
    client.set(wanted, "1", ex=SLOT_TTL_SECONDS)
    total = 0
    helped = False
    while True:
        slot = slot_acquire()
        if slot is None:
            return total
        client.delete(wanted)
        deadline = time.monotonic() + budget_seconds
        out_of_time = False
        taken: Slot = slot

        def go_on(claimed: int, held: Slot = taken, deadline: float = deadline) -> bool:
            nonlocal helped, out_of_time
            if not helped and slots_busy() < concurrency():
                # A long queue: bring in another drain (which does the same in turn, up to
                # the number of slots).
                helped = True
                enqueue_more()
            if time.monotonic() >= deadline or not held.renew():
                out_of_time = True
                return False
            return True

        try:
            total += messages_send_due(batch_size=batch_size, go_on=go_on)
        finally:
            slot.release()
        if out_of_time:
            enqueue_more()
            return total
        if not client.delete(wanted):
            return total
