"""Benchmark of broadcasts: the snapshot against a bare INSERT … SELECT of the same rows, and a
broadcast's send through the worker path against bench/send.py's worker path, in one run.

1. generates a scratch workspace set-based (INSERT … SELECT over generate_series): `--contacts`
   contacts, every one subscribed to a list; half of them (odd numbers) in Germany, which is the
   segment "country = DE" (500,000 of 1,000,000); `--send` of those also in Berlin, the segment
   of part 3. Then VACUUM ANALYZE, as autovacuum would after bulk inserts, and the live count
   of the broadcast's audience once (it also warms the cache for both statements of part 2);
2. the snapshot: first a hand-written INSERT … SELECT of the same recipients (segment, consent,
   suppression, an address) into campaigns_message, committed; then `broadcast_schedule` of a
   broadcast to the segment, send mode "now" — its `_start`: `messages_enqueue_timed` over
   `recipients()`, one INSERT … SELECT compiled from the segment's rules, committed. The bare
   statement goes first, so the snapshot pays for the larger table. Both sets of rows are
   checked identical, then deleted;
3. the send: `--send` messages (a second broadcast, to the Berlin segment) through Celery workers
   (bench/send.py's: prefork, `--workers` × `--concurrency`, on a queue of their own) to the SMTP
   sink, timed from `broadcast_schedule` until nothing is queued, claimed or sending; then the
   same number through bench/send.py's own worker path (`messages_enqueue` in its own scratch
   workspace) with the same workers, template and tracking. The broadcast's template is send.py's
   with its products written in (a broadcast has no event), so the messages are the same size.

Prints rows/s and the ratio of part 2 (target: the snapshot ≤ 2 × the bare statement), msg/s and
the ratio of part 3 (target: ≥ 90 % of send.py's), and the duplicates the sink counted (none);
deletes the scratch workspaces, their rows, the queue and the files.

    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/broadcast.py
    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/broadcast.py --contacts 100000 --send 10000
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
import uuid
from typing import Any

# send.py sets up Django (settings with a queue of the run's own) as it is imported.
import send  # bench/ is on sys.path
from bench_email import MJML, PRODUCTS, SUBJECT
from django.db import connection, transaction
from django.template import engines

from audiences.models import MailingList, Segment
from campaigns.broadcasts.audience import audience_count
from campaigns.broadcasts.services import BroadcastInput, broadcast_create, broadcast_schedule, broadcasts_tick
from campaigns.models import Broadcast, BroadcastStatus, DeliverySettings, EmailTemplate, MessageSource
from campaigns.providers.services import provider_create
from esp.models import Workspace

RUN = f"bench-broadcast-{uuid.uuid4().hex[:8]}"
BARE_SOURCE = "bench:bare"

# The recipients of a broadcast to the "country = DE" segment, written by hand: what
# recipients() asks (in the segment, subscribed to a list, an address, not suppressed).
BARE_INSERT = """
    INSERT INTO campaigns_message (
        workspace_id, contact_id, to_email, source, message_class, priority, smart_sending, template_id,
        subject_override, mailing_list_id, provider_id, sender_id, data, due_at, created_at,
        subject, state, reason, error, attempts, provider_message_id, links, delivery_status
    )
    SELECT c.workspace_id, c.id, c.email, %(source)s, 'marketing', 10, false, %(template)s,
        '', NULL, NULL, NULL, '{}', now(), now(), '', 'queued', '', '', 0, '', '{}', ''
    FROM audiences_contact c
    WHERE c.workspace_id = %(ws)s AND c.country = 'DE' AND c.email <> ''
      AND EXISTS (SELECT 1 FROM audiences_subscription s
                  WHERE s.workspace_id = %(ws)s AND s.contact_id = c.id AND s.status = 'subscribed')
      AND NOT EXISTS (SELECT 1 FROM audiences_suppression x
                      WHERE x.workspace_id = %(ws)s
                        AND x.email_hash = encode(sha256(convert_to(lower(trim(c.email)), 'UTF8')), 'hex'))
"""

SCRATCH_TABLES = (
    "campaigns_messageevent",
    "campaigns_message",
    "esp_outboxmessage",
    "audiences_subscription",
    "audiences_segmentmembership",
    "audiences_contact",
    "campaigns_broadcast",  # before the workspace: it holds its template
)


def log(message: str) -> None:
    print(message, flush=True)


def generate(workspace: Workspace, contacts: int, send_count: int) -> tuple[Segment, Segment]:
    """The contacts, their subscriptions and the two segments, set-based."""
    news = MailingList.objects.create(workspace=workspace, name="News")
    # Odd numbers are in Germany; the first `send_count` of them in Berlin.
    berlin_below = 2 * send_count
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
            SELECT %s, 'b' || n || '@bench.example', 'C' || (100000 + n),
                   (ARRAY['Anna', 'Ben', 'Chloé', 'Дмитрий', ''])[1 + n %% 5], 'Smith', '', '',
                   CASE WHEN n %% 2 = 1 AND n <= %s THEN 'Berlin' ELSE (ARRAY['Paris', '', 'Москва'])[1 + n %% 3] END,
                   CASE WHEN n %% 2 = 1 THEN 'DE' ELSE 'FR' END, '', '', '{}', '{}', 'bench',
                   now() - interval '400 days', now()
            FROM generate_series(1, %s) AS n
            """,
            [workspace.pk, berlin_below, contacts],
        )
        cursor.execute(
            """
            INSERT INTO audiences_subscription (workspace_id, contact_id, mailing_list_id, status, created_at,
                updated_at, confirmed_at)
            SELECT workspace_id, id, %s, 'subscribed', now(), now(), now()
            FROM audiences_contact WHERE workspace_id = %s
            """,
            [news.pk, workspace.pk],
        )
    germany = Segment.objects.create(
        workspace=workspace,
        name="Germany",
        rules={"match": "all", "negate": False, "conditions": [
            {"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"}]},
    )  # fmt: skip
    berlin = Segment.objects.create(
        workspace=workspace,
        name="Berlin",
        rules={"match": "all", "negate": False, "conditions": [
            {"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"},
            {"kind": "attribute", "field": "city", "operator": "eq", "value": "Berlin"}]},
    )  # fmt: skip
    return germany, berlin


def products_written_in() -> str:
    """send.py's MJML with the event's products rendered into it: the same email, no event."""
    loop = re.search(r"{% for product in event.products %}.*?{% endfor %}", MJML, re.DOTALL)
    assert loop is not None
    rows = engines["django"].from_string(loop.group(0)).render({"event": {"products": PRODUCTS}})
    return MJML.replace(loop.group(0), rows)


def a_broadcast(workspace: Workspace, template: EmailTemplate, segment: Segment, name: str) -> Broadcast:
    return broadcast_create(
        workspace=workspace,
        data=BroadcastInput(name=name, template=template.pk, include_segments=[segment.pk], send_mode="now"),
    )


def snapshot(workspace: Workspace, template: EmailTemplate, segment: Segment) -> dict[str, float]:
    """Part 2: the bare statement, then the snapshot; both committed, compared, deleted."""
    broadcast = a_broadcast(workspace, template, segment, "Snapshot")
    started = time.perf_counter()
    count = audience_count(workspace, broadcast)
    log(f"live count: {count.recipients:,} recipients of {count.matching:,} matching "
        f"({time.perf_counter() - started:.1f} s)")  # fmt: skip

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BARE_INSERT, {"source": BARE_SOURCE, "template": template.pk, "ws": workspace.pk})
        bare_rows = cursor.rowcount
    bare = time.perf_counter() - started

    started = time.perf_counter()
    broadcast = broadcast_schedule(workspace=workspace, broadcast_id=broadcast.pk)
    seconds = time.perf_counter() - started

    source = str(MessageSource.broadcast(broadcast.pk))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM (
                (SELECT contact_id FROM campaigns_message WHERE workspace_id = %(ws)s AND source = %(a)s
                 EXCEPT SELECT contact_id FROM campaigns_message WHERE workspace_id = %(ws)s AND source = %(b)s)
                UNION ALL
                (SELECT contact_id FROM campaigns_message WHERE workspace_id = %(ws)s AND source = %(b)s
                 EXCEPT SELECT contact_id FROM campaigns_message WHERE workspace_id = %(ws)s AND source = %(a)s)
            ) AS differ
            """,
            {"ws": workspace.pk, "a": source, "b": BARE_SOURCE},
        )
        differ = cursor.fetchone()[0]
        assert differ == 0 and bare_rows == broadcast.recipients, (differ, bare_rows, broadcast.recipients)
        # Out of the way of part 3 (they are due now), and the broadcast with them.
        cursor.execute("DELETE FROM campaigns_message WHERE workspace_id = %s", [workspace.pk])
    Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.CANCELLED)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_message")
    return {"rows": bare_rows, "bare": bare, "snapshot": seconds}


def broadcast_path(
    workspace: Workspace, template: EmailTemplate, segment: Segment, options: argparse.Namespace
) -> dict[str, Any]:
    """Part 3: the broadcast sent by send.py's workers, timed as send.py times its own path."""
    from campaigns.tasks import send_messages

    broadcast = a_broadcast(workspace, template, segment, "Send")
    workers = send.start_workers(options)
    try:
        started = time.perf_counter()
        broadcast = broadcast_schedule(workspace=workspace, broadcast_id=broadcast.pk)
        queued = time.perf_counter() - started
        next_tick = time.monotonic() + 5
        while send.outstanding(workspace):
            if any(worker.poll() is not None for worker in workers):
                raise SystemExit("a worker died: " + (send.TMP / "worker0.log").read_text()[-3000:])
            if time.monotonic() >= next_tick:
                send_messages.delay()  # what beat does
                next_tick = time.monotonic() + 5
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
    broadcasts_tick()
    broadcast.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, count(*) FROM campaigns_message WHERE workspace_id = %s AND source = %s GROUP BY state",
            [workspace.pk, str(MessageSource.broadcast(broadcast.pk))],
        )
        states = dict(cursor.fetchall())
    return {"messages": broadcast.recipients, "seconds": seconds, "queued": queued, "states": states,
            "status": broadcast.status}  # fmt: skip


def delete_scratch(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        for table in SCRATCH_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
    workspace.delete()


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts; half of them are the segment")
    parser.add_argument("--send", type=int, default=200_000, help="messages sent to the sink, each path")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (as bench/send.py)")
    parser.add_argument("--concurrency", type=int, default=4, help="pool processes per worker (as bench/send.py)")
    parser.add_argument("--skip-send", action="store_true", help="the snapshot only")
    options = parser.parse_args()
    if options.send > options.contacts // 2:
        parser.error("--send is at most half of --contacts (the segment)")
    # What send.worker_path reads.
    options.messages, options.in_process, options.profile, options.steps = options.send, False, None, False
    try:
        return run(options)
    finally:
        shutil.rmtree(send.TMP, ignore_errors=True)


def drop_queue() -> None:
    from esp.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_delete(send.QUEUE)


def run(options: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_message, audiences_contact, audiences_subscription")
    sink = send.Sink()
    workspace = Workspace.objects.create(
        name="bench broadcast", slug=RUN, default_from_name="Bench Shop", default_from_email="shop@bench.example",
        postal_address="1 Bench Street, Springfield", time_zone="Europe/Berlin",
    )  # fmt: skip
    baseline: Workspace | None = None
    try:
        started = time.perf_counter()
        germany, berlin = generate(workspace, options.contacts, options.send)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audiences_contact, audiences_subscription")
        log(f"generated {options.contacts:,} contacts (each subscribed), segments of {options.contacts // 2:,} "
            f"and {options.send:,}: {time.perf_counter() - started:.1f} s")  # fmt: skip
        provider_create(
            workspace=workspace, name="sink", kind="smtp",
            credentials={"host": "127.0.0.1", "port": sink.port, "use_tls": False, "timeout": 30}, is_default=True,
        )  # fmt: skip
        DeliverySettings.objects.create(
            workspace=workspace, utm_parameters={"utm_source": "esp", "utm_medium": "email"}
        )
        template = EmailTemplate.objects.create(
            workspace=workspace, name="bench", subject=SUBJECT, mjml=products_written_in()
        )

        result = snapshot(workspace, template, germany)
        rows = result["rows"]
        bare_rate, snapshot_rate = rows / result["bare"], rows / result["snapshot"]
        log(f"bare INSERT … SELECT: {rows:,} rows in {result['bare']:.1f} s = {bare_rate:,.0f} rows/s")
        log(f"snapshot (broadcast_schedule, send now): {rows:,} rows in {result['snapshot']:.1f} s = "
            f"{snapshot_rate:,.0f} rows/s")  # fmt: skip
        log(f"snapshot / bare: {result['snapshot'] / result['bare']:.2f} × the time (target ≤ 2)")
        if options.skip_send:
            return 0

        sent = broadcast_path(workspace, template, berlin, options)
        broadcast_rate = sent["messages"] / sent["seconds"]
        log(f"broadcast, worker path ({options.workers} × {options.concurrency}): {sent['messages']:,} messages "
            f"in {sent['seconds']:.1f} s (snapshot in {sent['queued']:.1f} s) = {broadcast_rate:,.0f} msg/s; "
            f"states {sent['states']}, broadcast {sent['status']}")  # fmt: skip

        baseline = Workspace.objects.create(
            name="bench send", slug=send.RUN, default_from_name="Bench Shop", default_from_email="shop@bench.example",
            postal_address="1 Bench Street, Springfield", time_zone="Europe/Berlin",
        )  # fmt: skip
        send_template = send.seed(baseline, options.send, sink.port)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE campaigns_message, audiences_contact")
        base = send.worker_path(baseline, send_template, options)
        send_rate = options.send / base["seconds"]
        log(f"bench/send.py worker path: {options.send:,} messages in {base['seconds']:.1f} s "
            f"= {send_rate:,.0f} msg/s")  # fmt: skip
        log(f"broadcast / send.py: {broadcast_rate / send_rate:.0%} (target ≥ 90 %)")

        counts = sink.counts()
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        log(f"sink: {sum(counts.values()):,} copies to {len(counts):,} addresses; duplicates: {duplicates}")
        ok = duplicates == 0 and sent["states"] == {"sent": options.send} and sent["status"] == BroadcastStatus.SENT
        return 0 if ok else 1
    finally:
        sink.stop()
        try:
            delete_scratch(workspace)
            if baseline is not None:
                send.cleanup(baseline)  # its rows, and the queue
        finally:
            if baseline is None:
                drop_queue()


if __name__ == "__main__":
    sys.exit(main())
