"""Benchmark of the reports: the Overview and a series report read from rollups stay flat in the
data's size and beat the same numbers by a live GROUP BY over the raw rows; the rollups stay
fresh under a steady stream of engagement events.

1. generates two scratch workspaces set-based (INSERT … SELECT over generate_series): BIG with
   `--contacts` contacts, `--messages` sent messages over 18 months (60 % from 60 broadcasts,
   40 % from the four email steps of 5 series, each contact enrolled in one) and about
   `--events` engagement events (deliveries, human and machine opens, clicks and scanner
   clicks, bounces, complaints, unsubscribes) plus orders ("Order Completed" events); SMALL the
   same at `--small` (1 %) of the size. VACUUM ANALYZE, then `rollups_rebuild` of each (timed);
2. the server time of the Overview page (last 90 days against the 90 before, by week) and of the
   series report page (every step's figures, money and the holdout lift) in each workspace, through Django's test
   client as a logged-in owner: the median of `--repeat` runs after one warm-up. Target: BIG ≤
   1.3 × SMALL (cost flat in the data's size);
3. the same numbers by a live GROUP BY over the raw rows in BIG (analytics.live: the message
   table joined to its events, the period and the one before): target rollups ≥ 20 × faster;
4. freshness: a writer thread inserts engagement events into BIG at `--rate` a second for
   `--stream` seconds while the refresh runs as the beat does (every 15 s); each event's lag is
   the time from its commit until a refresh that counted it ended. Target: the worst ≤ 60 s.

Prints the figures and ratios, and deletes the scratch workspaces (`--keep` keeps them).

    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/dashboard.py
    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/dashboard.py --contacts 10000 \\
        --messages 100000 --events 300000 --stream 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from analytics.live import live_rows  # noqa: E402
from analytics.rollups import rollups_rebuild, rollups_refresh  # noqa: E402
from automations.models import Series, SeriesVersion  # noqa: E402
from esp.middleware import SESSION_WORKSPACE_KEY  # noqa: E402
from esp.models import Membership, Role, User, Workspace  # noqa: E402

DAYS = 540
BROADCASTS = 60
SERIES = 5
STEP_KEYS = ("s1", "s2", "s3", "s4")
REFRESH_EVERY = 15.0


def log(message: str) -> None:
    print(message, flush=True)


def timed(label: str, action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    took = time.perf_counter() - start
    log(f"  {label}: {took:.1f} s")
    return took


def sql(statement: str, params: list | dict | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def generate(workspace: Workspace, contacts: int, messages: int, events: int) -> list[int]:
    """The workspace's data; the ids of its series."""
    ws = workspace.pk
    sql(
        """
        INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
            city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
        SELECT %s, 'd' || n || '@' || (ARRAY['gmail.com', 'yahoo.com', 'mail.ru', 'outlook.com', 'abv.bg'])[1 + n %% 5],
               'C' || n, 'Anna', 'Smith', '', '', '', 'DE', '', '', '{}', '{}', 'bench',
               now() - interval '600 days', now()
        FROM generate_series(1, %s) AS n
        """,
        [ws, contacts],
    )
    broadcasts = []
    for number in range(BROADCASTS):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO campaigns_broadcast (workspace_id, name, status, include_lists, include_segments,"
                " include_tags, exclude_lists, exclude_segments, exclude_tags, subject, preheader, utm_parameters,"
                " send_mode, priority, recipients, excluded, created_at, updated_at)"
                " VALUES (%s, %s, 'sent', '{}', '{}', '{}', '{}', '{}', '{}', '', '', '{}', 'now', 10, 0, '{}',"
                " now(), now()) RETURNING id",
                [ws, f"Promo {number + 1}"],
            )
            broadcasts.append(cursor.fetchone()[0])
    series_ids = []
    for number in range(SERIES):
        series = Series.objects.create(workspace=workspace, name=f"Series {number + 1}", status="live")
        version = SeriesVersion.objects.create(workspace=workspace, series=series, number=1, steps={})
        series_ids.append((series.pk, version.pk))
    # One enrollment per contact, in one of the series.
    sql(
        """
        INSERT INTO automations_enrollment (workspace_id, series_id, version_id, contact_id, entry_key, entry_data,
            state, step_key, wait_event, wait_key, holdout, entered_at, ended_at, end_reason, hops)
        SELECT %(ws)s, (%(series)s::bigint[])[1 + c.id %% %(n)s], (%(versions)s::bigint[])[1 + c.id %% %(n)s], c.id,
               '', '{}', 'completed', '', '', '', c.id %% 10 = 0, now() - interval '540 days', now(), 'completed', 4
        FROM audiences_contact c WHERE c.workspace_id = %(ws)s
        """,
        {"ws": ws, "series": [s for s, _v in series_ids], "versions": [v for _s, v in series_ids], "n": SERIES},
    )
    # Messages: the n-th goes to the (n mod contacts)-th contact (their ids are one run, made by
    # one statement), sent at a time spread over DAYS; a step message through that contact's
    # enrollment.
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM audiences_contact WHERE workspace_id = %s", [ws])
        first_contact = cursor.fetchone()[0]
    sql(
        """
        INSERT INTO campaigns_message (workspace_id, contact_id, to_email, source, message_class, priority,
            smart_sending, subject_override, preheader_override, data, state, reason, error, attempts, due_at,
            created_at, sent_at, provider_message_id, links, delivery_status, subject)
        SELECT %(ws)s, e.contact_id, 'x@example.com',
               CASE WHEN n %% 10 < 6
                    THEN 'broadcast:' || (%(broadcasts)s::bigint[])[1 + (n / %(per_broadcast)s) %% %(b)s]
                    ELSE 'step:' || e.id || ':' || (ARRAY['s1', 's2', 's3', 's4'])[1 + (n / %(contacts)s) %% 4] END,
               'marketing', 10, false, '', '', '{}', 'sent', '', '', 1, t.sent, t.sent, t.sent, '', '{}', '', 'Hello'
        FROM generate_series(0, %(messages)s - 1) AS n
        JOIN automations_enrollment e ON e.workspace_id = %(ws)s AND e.contact_id = %(first)s + n %% %(contacts)s
        CROSS JOIN LATERAL (SELECT now() - interval '540 days' + (n::float / %(messages)s) * interval '540 days'
                            AS sent) t
        ON CONFLICT (workspace_id, source, contact_id) DO NOTHING
        """,
        {
            "ws": ws,
            "broadcasts": broadcasts,
            "b": BROADCASTS,
            "contacts": contacts,
            "messages": messages,
            "first": first_contact,
            "per_broadcast": max(1, messages // BROADCASTS),
        },
    )
    # Events per message, by a hash of its id: delivered 95 %, human opens 25 % (a third of them
    # twice), machine opens 15 %, clicks 6 %, scanner clicks 1 %, bounces 2 %, complaints
    # 0.05 %, unsubscribes 0.2 %, plus later opens and clicks: about 1.7 events a message;
    # `events` scales the shares (each capped at every message).
    share = max(0.05, events / max(1, messages) / 1.7)
    sql(
        """
        INSERT INTO campaigns_messageevent (workspace_id, message_id, contact_id, type, occurred_at, event_key, url,
            user_agent, is_machine, details)
        SELECT m.workspace_id, m.id, m.contact_id, k.type, m.sent_at + k.after, k.type || ':' || m.id || ':' || k.nth,
               '', '', k.machine, '{}'
        FROM campaigns_message m
        CROSS JOIN LATERAL (SELECT abs(hashint8(m.id)) %% 10000 / 10000.0 AS r) h
        CROSS JOIN LATERAL (VALUES
            ('delivered', interval '5 seconds', false, 1, 0.95),
            ('opened', interval '2 hours', false, 1, 0.25),
            ('opened', interval '30 hours', false, 2, 0.08),
            ('opened', interval '3 days', false, 4, 0.10),
            ('opened', interval '10 seconds', true, 3, 0.15),
            ('clicked', interval '3 hours', false, 1, 0.06),
            ('clicked', interval '8 seconds', true, 2, 0.01),
            ('clicked', interval '26 hours', false, 3, 0.05),
            ('bounced', interval '20 seconds', false, 1, 0.02),
            ('complained', interval '1 day', false, 1, 0.0005),
            ('unsubscribed', interval '1 day', false, 1, 0.002)
        ) AS k(type, after, machine, nth, p)
        WHERE m.workspace_id = %s AND h.r < k.p * %s
        """,
        [workspace.pk, share],
    )
    # Orders: one in 10 messages leads to an order two days after it was sent.
    sql(
        """
        INSERT INTO audiences_event (workspace_id, contact_id, type, name, properties, context, user_id,
            anonymous_id, message_id, occurred_at, received_at)
        SELECT m.workspace_id, m.contact_id, 'track', 'Order Completed',
               jsonb_build_object('order_id', 'o' || m.id, 'total', 20 + m.id %% 180, 'currency', 'EUR'),
               '{}', '', '', 'order-' || m.id, m.sent_at + interval '2 days', m.sent_at + interval '2 days'
        FROM campaigns_message m WHERE m.workspace_id = %s AND m.id %% 10 = 0
        """,
        [workspace.pk],
    )
    return [s for s, _v in series_ids]


def counts(workspace: Workspace) -> tuple[int, int, int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM audiences_contact WHERE workspace_id = %(w)s),"
            " (SELECT count(*) FROM campaigns_message WHERE workspace_id = %(w)s),"
            " (SELECT count(*) FROM campaigns_messageevent WHERE workspace_id = %(w)s),"
            " (SELECT count(*) FROM audiences_event WHERE workspace_id = %(w)s)",
            {"w": workspace.pk},
        )
        return cursor.fetchone()  # type: ignore[return-value]


def median_ms(action: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    action()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), times


def page_timer(client: Client, url: str) -> Callable[[], object]:
    def get() -> object:
        response = client.get(url, HTTP_HOST="127.0.0.1")
        assert response.status_code == 200, (url, response.status_code)
        return response

    return get


def owner_client(workspace: Workspace) -> Client:
    user = User.objects.create_user(email=f"{workspace.slug}@bench.example", password=None)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = workspace.pk
    session.save()
    return client


def stream_events(workspace: Workspace, rate: int, seconds: float, lags: list[float], stop: threading.Event) -> None:
    """Insert opens of BIG's messages at `rate`/s; note (event id, commit time)."""
    connection_ = connections.create_connection("default")
    committed: list[tuple[int, float]] = []
    try:
        with connection_.cursor() as cursor:
            cursor.execute(
                "SELECT id, contact_id FROM campaigns_message WHERE workspace_id = %s ORDER BY id DESC LIMIT %s",
                [workspace.pk, int(rate * seconds) + 10],
            )
            targets = cursor.fetchall()
        started = time.monotonic()
        sent = 0
        while not stop.is_set() and time.monotonic() - started < seconds:
            due = int((time.monotonic() - started) * rate)
            batch = targets[sent:due]
            if batch:
                with connection_.cursor() as cursor:
                    cursor.execute(
                        """
                        INSERT INTO campaigns_messageevent (workspace_id, message_id, contact_id, type, occurred_at,
                            event_key, url, user_agent, is_machine, details)
                        SELECT %s, t.id, t.contact_id, 'opened', now(), 'stream:' || t.id, '', '', false, '{}'
                        FROM unnest(%s::bigint[], %s::bigint[]) AS t(id, contact_id)
                        RETURNING id
                        """,
                        [workspace.pk, [row[0] for row in batch], [row[1] for row in batch]],
                    )
                    ids = [row[0] for row in cursor.fetchall()]
                connection_.commit()
                now = time.monotonic()
                committed.extend((event_id, now) for event_id in ids)
                sent = due
            time.sleep(0.05)
    finally:
        connection_.close()
        lags.append(float(len(committed)))
        lags.extend(committed_at for _id, committed_at in committed)  # read by the caller


def freshness(workspace: Workspace, rate: int, seconds: float) -> dict[str, float]:
    """Stream events while refreshing every REFRESH_EVERY s; the worst lag until counted."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM campaigns_messageevent")
        start_id = cursor.fetchone()[0]
    stop = threading.Event()
    results: list[float] = []
    writer = threading.Thread(target=stream_events, args=(workspace, rate, seconds, results, stop))
    refreshes: list[tuple[float, int, float]] = []  # (end time, watermark event id, duration)
    writer.start()
    began = time.monotonic()
    while writer.is_alive() or not refreshes or refreshes[-1][0] < began + seconds + REFRESH_EVERY:
        tick = time.monotonic()
        rollups_refresh()
        with connection.cursor() as cursor:
            cursor.execute("SELECT event_id FROM analytics_refreshstate WHERE id = 1")
            row = cursor.fetchone()
        end = time.monotonic()
        refreshes.append((end, row[0] if row else 0, end - tick))
        if not writer.is_alive() and len(refreshes) > 1 and refreshes[-1][1] == refreshes[-2][1]:
            break
        time.sleep(max(0.0, REFRESH_EVERY - (time.monotonic() - tick)))
    writer.join()
    stop.set()
    total = int(results[0]) if results else 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM campaigns_messageevent WHERE id > %s AND workspace_id = %s ORDER BY id",
            [start_id, workspace.pk],
        )
        ids = [row[0] for row in cursor.fetchall()]
    commit_times = results[1:]
    worst = 0.0
    for event_id, committed_at in zip(ids, commit_times, strict=False):
        counted = next((end for end, watermark, _d in refreshes if watermark >= event_id and end >= committed_at), None)
        if counted is None:
            return {"events": total, "worst_lag": float("inf"), "refreshes": len(refreshes)}
        worst = max(worst, counted - committed_at)
    return {
        "events": total,
        "worst_lag": worst,
        "refreshes": len(refreshes),
        "longest_refresh": max(d for _e, _w, d in refreshes),
    }


def delete(workspace: Workspace) -> None:
    """Set-based: the ORM's cascade would delete a million contacts a batch at a time."""
    with connection.cursor() as cursor:
        for table in (
            "analytics_messagefact", "analytics_dailyrollup", "analytics_attribution", "analytics_dailyorders",
            "campaigns_messageevent", "campaigns_message", "audiences_event", "automations_enrollment",
            "audiences_contact",
        ):  # fmt: skip
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
    Membership.objects.filter(workspace=workspace).delete()
    User.objects.filter(email=f"{workspace.slug}@bench.example").delete()
    workspace.delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=30_000_000, help="engagement and order events, about")
    parser.add_argument("--small", type=float, default=0.01, help="SMALL's share of BIG's size")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rate", type=int, default=200, help="events a second during the freshness run")
    parser.add_argument("--stream", type=float, default=120, help="seconds of the freshness run")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    logging.getLogger("esp.request").setLevel(logging.WARNING)  # a line a request would drown the figures
    run = uuid.uuid4().hex[:6]
    sizes = {
        "SMALL": (int(args.contacts * args.small), int(args.messages * args.small), int(args.events * args.small)),
        "BIG": (args.contacts, args.messages, args.events),
    }
    spaces: dict[str, Workspace] = {}
    series: dict[str, int] = {}  # the first series of each workspace
    try:
        for name, (contacts, messages, events) in sizes.items():
            workspace = Workspace.objects.create(
                name=f"Dashboard bench {name}", slug=f"bench-dash-{name.lower()}-{run}"
            )
            spaces[name] = workspace
            log(f"{name}: generating into workspace {workspace.pk}")
            start = time.perf_counter()
            series[name] = generate(workspace, contacts, messages, events)[0]
            log(f"  generate: {time.perf_counter() - start:.1f} s")
            c, m, e, o = counts(workspace)
            log(f"  {c:,} contacts, {m:,} messages, {e:,} message events, {o:,} orders")
        with connection.cursor() as cursor:
            for table in ("campaigns_message", "campaigns_messageevent", "audiences_event", "automations_enrollment"):
                cursor.execute(f"VACUUM ANALYZE {table}")
        for name, workspace in spaces.items():
            timed(f"{name}: rollups_rebuild", partial(rollups_rebuild, workspace=workspace))
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE analytics_dailyrollup")
            cursor.execute("VACUUM ANALYZE analytics_messagefact")

        today = timezone.localdate()
        overview_url = "/reports/?period=90d&grain=week"
        figures: dict[str, dict[str, float]] = {}
        for name, workspace in spaces.items():
            client = owner_client(workspace)
            overview, _t = median_ms(page_timer(client, overview_url), args.repeat)
            report, _t = median_ms(page_timer(client, f"/reports/series/{series[name]}/?period=90d"), args.repeat)
            figures[name] = {"overview": overview, "series": report}
            log(f"{name}: overview {overview:.1f} ms, series report {report:.1f} ms (median of {args.repeat})")

        big = spaces["BIG"]
        since, until = today - dt.timedelta(days=179), today

        def live() -> object:
            return live_rows(workspace=big, since=since, until=until)

        live_ms, _t = median_ms(live, max(1, args.repeat // 3))
        log(f"BIG: the same figures by live GROUP BY over the raw rows: {live_ms:.0f} ms")

        log(f"\nfreshness: {args.rate} events/s for {args.stream:.0f} s into BIG, refresh every {REFRESH_EVERY:.0f} s")
        fresh = freshness(big, args.rate, args.stream)

        log("\n=== results ===")
        for page in ("overview", "series"):
            ratio = figures["BIG"][page] / figures["SMALL"][page]
            log(
                f"{page:9}: SMALL {figures['SMALL'][page]:7.1f} ms · BIG {figures['BIG'][page]:7.1f} ms · "
                f"BIG/SMALL {ratio:.2f}× (target ≤ 1.3×)"
            )
        log(
            f"live GROUP BY {live_ms:.0f} ms · overview from rollups {figures['BIG']['overview']:.1f} ms · "
            f"{live_ms / figures['BIG']['overview']:.0f}× faster (target ≥ 20×)"
        )
        log(
            f"freshness: {fresh['events']:.0f} events streamed, worst lag until counted {fresh['worst_lag']:.1f} s "
            f"(target ≤ 60 s), {fresh['refreshes']:.0f} refreshes, longest {fresh.get('longest_refresh', 0):.1f} s"
        )
    except Exception:
        traceback.print_exc()
        raise
    finally:
        if args.keep:
            log(f"kept workspaces {[w.pk for w in spaces.values()]}")
        else:
            for workspace in spaces.values():
                delete(workspace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
