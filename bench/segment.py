"""Benchmark of the segment engine: a 3-condition segment over 1,000,000 contacts and
10,000,000 events, counted through the engine and by a hand-written SQL query in the same run.

Generates the data set-based (INSERT … SELECT over generate_series, seeded, so runs are
comparable) in a scratch workspace, ANALYZEs, then times

  * the engine: segment_queryset(workspace, rules).count() — validation, compilation and the
    one COUNT query, as the builder's live count and the API's /segments/count run it;
  * the hand-written SQL: the same question as an expert would write it (a join with the
    grouped buyers and an anti-join with the recent openers).

Each is run once to warm the cache, then --repeat rounds of both in turn (so a change of load on
a shared machine hits both alike); the median is reported. The member
sets of both are fetched and asserted identical. Then the segment's membership is materialised
once (segment_refresh: the INSERT of every member with entered_at), and timed too.

    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/segment.py
    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/segment.py --contacts 100000 --events 1000000

The segment: country = DE, "Order Completed" at least 2 times in the last 30 days, no "Email
Opened" in the last 14 days. Targets: engine ≤ 1.5 × hand SQL, and < 2 s. Results are in
bench/README.md. The scratch workspace is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from audiences.models import Segment  # noqa: E402
from audiences.segments.compiler import segment_queryset  # noqa: E402
from audiences.segments.membership import segment_refresh  # noqa: E402
from audiences.segments.services import segment_save  # noqa: E402
from esp.models import Workspace  # noqa: E402

RULES = {
    "match": "all",
    "negate": False,
    "conditions": [
        {"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"},
        {"kind": "event", "name": "Order Completed", "count_operator": "gte", "count": 2,
         "period": "in_last_days", "days": 30},
        {"kind": "event", "name": "Email Opened", "did": False, "period": "in_last_days", "days": 14},
    ],
}  # fmt: skip

HAND_SQL = """
    WITH buyers AS (
        SELECT contact_id FROM audiences_event
        WHERE workspace_id = %(ws)s AND name = 'Order Completed' AND occurred_at >= %(since30)s
        GROUP BY contact_id HAVING count(*) >= 2
    )
    SELECT {select} FROM audiences_contact c JOIN buyers b ON b.contact_id = c.id
    WHERE c.workspace_id = %(ws)s AND c.country = 'DE'
      AND NOT EXISTS (
        SELECT 1 FROM audiences_event o
        WHERE o.contact_id = c.id AND o.workspace_id = %(ws)s AND o.name = 'Email Opened'
          AND o.occurred_at >= %(since14)s)
"""

# Countries of the generated contacts: DE is one in five.
COUNTRIES = "ARRAY['DE','FR','GB','US','PL','ES','IT','NL','DE','AT']"
# Event names and their shares: (name, cumulative share).
EVENT_NAMES = [
    ("Order Completed", 0.10),
    ("Email Opened", 0.35),
    ("Product Viewed", 0.75),
    ("Product Added", 0.85),
    ("Checkout Started", 0.90),
    ("Page Viewed", 1.00),
]
DAY = 86_400
EVENT_CHUNK = 1_000_000


def log(message: str) -> None:
    print(message, flush=True)


def timed(label: str, action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    log(f"  {label}: {seconds:.1f} s")
    return seconds


def generate(workspace: Workspace, contacts: int, events: int, now: dt.datetime, *, shuffled: bool) -> None:
    """Contacts and events of the scratch workspace, set-based and seeded. Activity is recent-
    heavy (age = u² × 180 days, u uniform) and skewed over contacts (a few very active ones),
    2 % of events are anonymous (no contact). Events are inserted oldest first, as ingestion
    stores them (late events are a minority); --shuffled inserts them in random order instead,
    the worst case for the heap reads of "in the last N days"."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        timed(
            f"{contacts:,} contacts",
            lambda: cursor.execute(
                f"""
                INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender,
                    phone, city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
                SELECT %s, 'c' || g || '@bench.example', 'ext-' || g, 'First' || (g %% 1000), 'Last' || (g %% 997),
                    '', '', '', ({COUNTRIES})[1 + floor(random() * 10)::int], '', '', '{{}}', '{{}}', 'bench',
                    %s, %s
                FROM generate_series(1, %s) g
                """,
                [workspace.pk, now, now, contacts],
            ),
        )
        # Contact number → id, whatever ids the sequence handed out.
        cursor.execute(
            "CREATE TEMP TABLE bench_ids AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM audiences_contact "
            "WHERE workspace_id = %s",
            [workspace.pk],
        )
        cursor.execute("CREATE UNIQUE INDEX ON bench_ids (n)")
        cursor.execute("ANALYZE bench_ids")
        # u: the event's place in time, 1 = now. In insertion order, or random.
        age = "random()" if shuffled else f"(1 - g::float8 / {events})"
        names = " ".join(f"WHEN r < {share} THEN '{name}'" for name, share in EVENT_NAMES[:-1])
        last = EVENT_NAMES[-1][0]
        for start in range(1, events + 1, EVENT_CHUNK):
            end = min(start + EVENT_CHUNK - 1, events)
            with transaction.atomic():
                timed(
                    f"events {start:,}–{end:,}",
                    lambda start=start, end=end: cursor.execute(
                        f"""
                        INSERT INTO audiences_event (workspace_id, contact_id, type, name, properties, context,
                            user_id, anonymous_id, message_id, occurred_at, received_at)
                        SELECT %(ws)s, CASE WHEN s.anon THEN NULL ELSE ids.id END, 'track', s.name,
                            CASE WHEN s.name = 'Order Completed'
                                 THEN jsonb_build_object('order_id', s.g, 'total', s.g %% 200) ELSE '{{}}' END,
                            '{{}}', '', CASE WHEN s.anon THEN 'anon-' || s.g ELSE '' END, 'bench-' || s.g,
                            s.occurred_at, s.occurred_at
                        FROM (
                            SELECT g, random() < 0.02 AS anon,
                                1 + floor(power(random(), 1.5) * %(contacts)s)::int AS n,
                                CASE {names} ELSE '{last}' END AS name,
                                %(now)s - make_interval(secs => power({age}, 2) * 180 * {DAY}) AS occurred_at
                            FROM (SELECT g, random() AS r FROM generate_series(%(start)s, %(end)s) g) picked
                        ) s JOIN bench_ids ids ON ids.n = s.n
                        """,
                        {"ws": workspace.pk, "contacts": contacts, "now": now, "start": start, "end": end},
                    ),
                )
        cursor.execute("DROP TABLE bench_ids")
    # VACUUM, as autovacuum does after bulk inserts (autovacuum_vacuum_insert_threshold): it
    # sets the visibility map, without which index-only scans still visit the heap. Both the
    # engine and the hand-written query get the same tables. (Django autocommits here, and
    # VACUUM must be a statement of its own.)
    with connection.cursor() as cursor:

        def vacuum() -> None:
            cursor.execute("VACUUM (ANALYZE) audiences_contact")
            cursor.execute("VACUUM (ANALYZE) audiences_event")

        timed("VACUUM ANALYZE", vacuum)


def interleaved(actions: dict[str, Callable[[], int]], repeat: int) -> dict[str, tuple[float, list[float], int]]:
    """Each action once to warm the cache, then `repeat` rounds of all of them in turn, so that a
    change of load on the (shared) machine hits both alike. Median, all times, last result."""
    for action in actions.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    results: dict[str, int] = {}
    for _ in range(repeat):
        for name, action in actions.items():
            start = time.perf_counter()
            results[name] = action()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), times[name], results[name]) for name in actions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query (median reported)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch workspace (and print its id)")
    parser.add_argument("--workspace", type=int, help="reuse a workspace kept by --keep (no generation)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of both queries")
    parser.add_argument("--shuffled", action="store_true", help="insert events in random time order (worst case)")
    args = parser.parse_args()

    if args.workspace:
        workspace = Workspace.objects.get(pk=args.workspace)
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(occurred_at) FROM audiences_event WHERE workspace_id = %s", [workspace.pk])
            now = cursor.fetchone()[0]
        log(f"reusing workspace {workspace.pk} ({workspace.slug})")
    else:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        slug = f"bench-segment-{uuid.uuid4().hex[:8]}"
        workspace = Workspace.objects.create(name="Segment benchmark", slug=slug)
        log(f"generating into workspace {workspace.pk} ({slug}):")
        generate(workspace, args.contacts, args.events, now, shuffled=args.shuffled)

    params = {
        "ws": workspace.pk,
        "since30": now - dt.timedelta(days=30),
        "since14": now - dt.timedelta(days=14),
    }

    def engine_count() -> int:
        return segment_queryset(workspace=workspace, rules=RULES, now=now).count()

    def hand_count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL.format(select="count(*)"), params)
            return int(cursor.fetchone()[0])

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM audiences_contact WHERE workspace_id = %s", [workspace.pk])
            contact_total = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM audiences_event WHERE workspace_id = %s", [workspace.pk])
            event_total = cursor.fetchone()[0]
        log(f"\n{contact_total:,} contacts, {event_total:,} events; the segment:")
        log("  country = DE AND did 'Order Completed' >= 2 times in the last 30 days")
        log("  AND did not do 'Email Opened' in the last 14 days\n")

        timings = interleaved({"engine": engine_count, "hand": hand_count}, args.repeat)
        engine_median, engine_times, engine_n = timings["engine"]
        hand_median, hand_times, hand_n = timings["hand"]
        start = time.perf_counter()
        for _ in range(20):  # the Python side alone: validate, compile, render the SQL
            segment_queryset(workspace=workspace, rules=RULES, now=now).query.sql_with_params()
        python_ms = (time.perf_counter() - start) / 20 * 1000

        engine_ids = set(segment_queryset(workspace=workspace, rules=RULES, now=now).values_list("pk", flat=True))
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL.format(select="c.id"), params)
            hand_ids = {row[0] for row in cursor.fetchall()}
        assert engine_ids == hand_ids, f"member sets differ: {len(engine_ids ^ hand_ids)} contacts"
        assert engine_n == hand_n == len(engine_ids)

        def runs(times: list[float]) -> str:
            return ", ".join(f"{t * 1000:.0f}" for t in times)

        log(f"members: {engine_n:,} (identical sets from both)")
        log(f"engine   count: median {engine_median * 1000:.0f} ms   (runs: {runs(engine_times)} ms)")
        log(f"hand SQL count: median {hand_median * 1000:.0f} ms   (runs: {runs(hand_times)} ms)")
        ratio = engine_median / hand_median
        log(f"ratio engine / hand SQL: {ratio:.2f}   (target ≤ 1.5; engine < 2 s: {engine_median < 2})")
        log(f"of the engine's time, Python (validate + compile to SQL): {python_ms:.1f} ms")

        if args.explain:
            sql, sql_params = (
                segment_queryset(workspace=workspace, rules=RULES, now=now).values("pk").query.sql_with_params()
            )
            with connection.cursor() as cursor:
                for label, query, query_params in (
                    ("engine", f"SELECT count(*) FROM ({sql}) q", sql_params),
                    ("hand SQL", HAND_SQL.format(select="count(*)"), params),
                ):
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}", query_params)
                    log(f"\n--- {label} ---\n" + "\n".join(row[0] for row in cursor.fetchall()))

        # Not handed to a worker that may be running on the same broker: refreshed right here.
        Segment.objects.filter(workspace=workspace, name="Bench segment").delete()  # of a kept run
        with mock.patch("audiences.segments.services._enqueue_refresh"):
            segment = segment_save(workspace=workspace, name="Bench segment", rules=RULES)
        start = time.perf_counter()
        result = segment_refresh(segment_id=segment.pk, now=now)
        log(f"\nmaterialised membership (segment_refresh): {time.perf_counter() - start:.2f} s, "
            f"{result.entered if result else 0:,} entered")  # fmt: skip
        start = time.perf_counter()
        segment_refresh(segment_id=segment.pk, now=now)
        log(f"refresh again, nothing changed: {time.perf_counter() - start:.2f} s")
    finally:
        if args.keep:
            log(f"\nkept: --workspace {workspace.pk}")
        else:
            with connection.cursor() as cursor:
                start = time.perf_counter()
                for table in (
                    "audiences_recentevent",
                    "audiences_recenteventsbuilt",
                    "audiences_insightfigures",
                    "audiences_customerfacts",
                    "audiences_segmentmembership",
                    "audiences_segment",
                    "audiences_event",
                    "audiences_contact",
                ):
                    cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
                cursor.execute("DELETE FROM esp_workspace WHERE id = %s", [workspace.pk])
            log(f"\nscratch workspace deleted ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
