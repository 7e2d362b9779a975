"""The per-provider rate limit is shared through Redis by every worker: threads of this process
and another process together never go faster than the limit, and N sends at R per second
take (N - 1) / R seconds."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

from campaigns.providers.ratelimit import key_for, rate_limit_wait, redis_url

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import json, sys, time
import django
django.setup()
from campaigns.providers.ratelimit import rate_limit_wait
provider_id, per_second, count = (int(a) for a in sys.argv[1:4])
rate_limit_wait(provider_id + 1, 1)  # connect (and load the script) before the start signal
print("ready", flush=True)
sys.stdin.readline()
slots = [rate_limit_wait(provider_id, per_second) for _ in range(count)]
print(json.dumps(slots), flush=True)
"""


def _provider_id() -> int:
    # Unique per test run: the key lives in the shared Redis, not in the test database.
    return 10**12 + secrets.randbelow(10**12)


def _max_in_any_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps[i:] if s < start + 1.0) for i, start in enumerate(stamps))


def test_no_limit_never_waits_nor_asks_redis() -> None:
    started = time.monotonic()
    for _ in range(10_000):
        rate_limit_wait(_provider_id(), 0)
    assert time.monotonic() - started < 0.5


def test_one_worker_is_spaced_evenly() -> None:
    provider_id = _provider_id()
    started = time.monotonic()
    slots = [rate_limit_wait(provider_id, 10) for _ in range(11)]
    elapsed = time.monotonic() - started
    # 11 sends at 10/s: the first at once, then one every 0.1 s -> 1.0 s. The slots are exact;
    # the clock only roughly (an upper bound that leaves room for a busy test machine).
    # (A sender that wakes more than a slot late is given the next free one, later still.)
    assert all(b - a >= 100_000 for a, b in itertools.pairwise(slots))  # type: ignore[operator]
    assert 0.95 <= elapsed <= 2.0


def test_threads_and_another_process_share_the_limit() -> None:
    provider_id, per_second, per_worker = _provider_id(), 20, 8
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "esp.settings.test"}
    other = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(provider_id), str(per_second), str(per_worker)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "ready"
        slots: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(per_worker):
                slot = rate_limit_wait(provider_id, per_second)
                assert slot is not None
                with lock:
                    slots.append(slot)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        started = time.time()
        other.stdin.write("go\n")
        other.stdin.flush()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        slots += json.loads(other.stdout.readline())
        other.wait(30)
    finally:
        other.kill()
        other.wait()
    finished = time.time()

    total = 4 * per_worker  # 32 sends at 20/s: (32 - 1) / 20 = 1.55 s
    assert len(slots) == total
    # Every send had a slot of its own, a whole interval after the one before: never more than
    # the limit in any second, whichever of the 4 senders took it. (The slots, not the moments
    # the senders woke up: a busy machine wakes a thread late, which sends later, never sooner.)
    ordered = sorted(slots)
    assert all(b - a >= 1_000_000 // per_second for a, b in itertools.pairwise(ordered))
    assert _max_in_any_second([slot / 1e6 for slot in ordered]) <= per_second
    # And the senders waited for them: the last slot came (N - 1) / R after the first.
    assert ordered[-1] - ordered[0] >= (total - 1) * 1_000_000 // per_second
    assert finished - started >= 1.5


def test_providers_are_limited_separately() -> None:
    first, second = _provider_id(), _provider_id()
    started = time.monotonic()
    for _ in range(3):
        rate_limit_wait(first, 5)
        rate_limit_wait(second, 5)
    # Each provider sends 3 at 5/s (0.4 s); sharing one budget would take 1.0 s.
    assert 0.38 <= time.monotonic() - started <= 0.8


def test_the_slot_key_expires_on_its_own() -> None:
    provider_id = _provider_id()
    rate_limit_wait(provider_id, 2)
    ttl = redis.Redis.from_url(redis_url()).pttl(key_for(provider_id))
    # The next slot is 0.5 s away; the key lives a second beyond it.
    assert 1000 < ttl <= 1500
