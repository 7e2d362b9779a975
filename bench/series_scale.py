"""Benchmark of the series engine at scale, each figure beside a baseline of the same run.

(a) enrolling: `--contacts` (100,000) contacts of a list enter a promo series at once, through
    the engine (`promos_start`: one INSERT … SELECT … ON CONFLICT DO NOTHING with re-entry,
    holdout and the "entered" trace), against a bare `INSERT … SELECT` of the same rows into
    the enrollment table (no rules, no trace). `--repeat` rounds of both in turn, each into a
    fresh series; medians. Target: engine ≤ 2 × bare.
(b) first emails: the promo's first step (a send) for all of them, through real Celery workers
    (the beat tick sent to them as a task: the tick makes the Messages, the drain sends them)
    to the SMTP sink of bench/send.py, against bench/send.py's worker path (a broadcast to the
    same contacts, same template, same sink and workers) in the same run. Target: ≥ 80 %.
    `--skip-send` leaves it out.
(c) the tick with many waiting: one tick (the task body of `automations.run_due_enrollments`)
    that finds `--due` (1,000) enrollments due — their wait is over and the next step mails —
    timed with 10,000 enrollments waiting in all, then with `--waiting` (1,000,000). Target:
    the big tick ≤ 1.5 × the small one.

    DATABASE_URL=…/esp_bench .venv/bin/python bench/series_scale.py
    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/series_scale.py --contacts 20000 --waiting 200000

It imports bench/send.py for its sink, seed, workers and broadcast path (so the settings are
send.py's: a queue of the run's own). Scratch workspaces are deleted at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import send as send_bench
from django.db import connection

from audiences.models import MailingList
from automations.engine.events import promos_start
from automations.models import Enrollment, Series, SeriesVersion, Trace
from automations.services import SeriesInput, series_create, series_publish
from automations.tasks import run_due_enrollments
from campaigns.models import EmailTemplate, Message
from esp import clock
from esp.models import Workspace


def scratch_workspace(name: str) -> Workspace:
    return Workspace.objects.create(
        name=name, slug=f"{send_bench.RUN}-{name}", default_from_name="Bench Shop",
        default_from_email="shop@bench.example", postal_address="1 Bench Street, Springfield",
        time_zone="Europe/Berlin",
    )  # fmt: skip


def subscribe_all(workspace: Workspace) -> MailingList:
    promo_list = MailingList.objects.create(workspace=workspace, name="Promo")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audiences_subscription (workspace_id, contact_id, mailing_list_id, status, created_at,
                updated_at, confirmed_at)
            SELECT workspace_id, id, %s, 'subscribed', now(), now(), now() FROM audiences_contact
            WHERE workspace_id = %s
            """,
            [promo_list.pk, workspace.pk],
        )
        cursor.execute("ANALYZE audiences_contact, audiences_subscription")
    return promo_list


def promo(
    workspace: Workspace, template: EmailTemplate, promo_list: MailingList, name: str, *, smart_sending: bool = True
) -> Series:
    """Teaser now, wait three days, launch: a promo over the list that starts at once."""
    at = (clock.now() - dt.timedelta(seconds=1)).isoformat()
    series = series_create(
        workspace=workspace,
        data=SeriesInput(
            name=name, kind="promo", smart_sending=smart_sending,
            trigger={"type": "promo", "list": promo_list.pk, "at": at},
            steps={"start": "teaser", "steps": [
                {"key": "teaser", "type": "send", "template": template.pk, "next": "pause"},
                {"key": "pause", "type": "wait", "amount": 3, "unit": "days", "next": "launch"},
                {"key": "launch", "type": "send", "template": template.pk},
            ]},
        ),
    )  # fmt: skip
    series_publish(workspace=workspace, series_id=series.pk)
    series.refresh_from_db()
    return series


BARE_INSERT = """
    INSERT INTO automations_enrollment (
        workspace_id, series_id, version_id, contact_id, entry_key, entry_data, entry_event_id, state, step_key,
        step_started_at, due_at, wait_event, wait_key, holdout, entered_at, end_reason, hops
    )
    SELECT s.workspace_id, %s, %s, s.contact_id, '', '{}', NULL, 'active', 'teaser', %s, %s, '', '', false, %s, '', 0
    FROM audiences_subscription s
    WHERE s.mailing_list_id = %s AND s.status = 'subscribed'
"""


def enroll_rounds(workspace: Workspace, template: EmailTemplate, promo_list: MailingList, repeat: int) -> None:
    engine: list[float] = []
    bare: list[float] = []
    counts = set()
    for number in range(repeat):
        for way in ("bare", "engine"):
            series = promo(workspace, template, promo_list, f"{way} {number}")
            # Enrolled series would be ticked by (c) later: nothing of (a) stays due.
            started = time.perf_counter()
            if way == "engine":
                entered = sum(len(ids) for _series, ids in promos_start())
                engine.append(time.perf_counter() - started)
            else:
                with connection.cursor() as cursor:
                    now = clock.now()
                    version = SeriesVersion.objects.get(pk=series.live_version_id)
                    cursor.execute(BARE_INSERT, [series.pk, version.pk, now, now, now, promo_list.pk])
                    entered = cursor.rowcount
                bare.append(time.perf_counter() - started)
                Series.objects.filter(pk=series.pk).update(started_at=clock.now())
            counts.add(entered)
            Series.objects.filter(pk=series.pk).update(status="archived")
    (entered,) = counts
    e, b = statistics.median(engine), statistics.median(bare)
    print(f"(a) enroll {entered:,} at once: engine (promos_start) {e:.2f}s = {entered / e:,.0f}/s "
          f"[{', '.join(f'{x:.2f}' for x in engine)}]; bare INSERT … SELECT {b:.2f}s = {entered / b:,.0f}/s "
          f"[{', '.join(f'{x:.2f}' for x in bare)}]; ratio engine / bare {e / b:.2f} (target ≤ 2)")  # fmt: skip


def first_emails(options: argparse.Namespace) -> None:
    """The promo's first emails through the workers to the sink, beside send.py's worker path."""
    sink = send_bench.Sink()
    workspace = scratch_workspace("send")
    try:
        template = send_bench.seed(workspace, options.contacts, sink.port)
        promo_list = subscribe_all(workspace)
        workers_options = argparse.Namespace(
            messages=options.contacts, workers=options.workers, concurrency=options.concurrency,
            in_process=False, profile=None, steps=False,
        )  # fmt: skip
        broadcast = send_bench.worker_path(workspace, template, workers_options)
        broadcast_rate = options.contacts / broadcast["seconds"]
        print(f"(b) send.py worker path (broadcast): {options.contacts:,} in {broadcast['seconds']:.1f}s "
              f"= {broadcast_rate:,.0f} msg/s")  # fmt: skip

        # Smart sending off: the broadcast just mailed these contacts, and this measures sending.
        series = promo(workspace, template, promo_list, "first emails", smart_sending=False)
        workers = send_bench.start_workers(workers_options)
        try:
            started = time.perf_counter()
            run_due_enrollments.delay()  # the beat's tick, run by a worker
            made = Message.objects.filter(workspace=workspace, source__startswith="step:")
            next_tick = time.monotonic() + 5
            while made.count() < options.contacts or send_bench.outstanding(workspace):
                if any(worker.poll() is not None for worker in workers):
                    raise SystemExit("a worker died")
                if time.monotonic() >= next_tick:
                    run_due_enrollments.delay()  # beat ticks on (every 5 s)
                    next_tick = time.monotonic() + 5
                time.sleep(0.2)
            seconds = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
        rate = options.contacts / seconds
        states = Counter(f"{state} {reason}".strip() for state, reason in made.values_list("state", "reason"))
        counts = Counter(sink.counts().values())
        print(f"(b) promo first emails (tick + drain by the workers): {options.contacts:,} in {seconds:.1f}s = "
              f"{rate:,.0f} msg/s; ratio to send.py's path {rate / broadcast_rate:.0%} (target ≥ 80 %); "
              f"states {dict(states)}; copies per address {dict(counts)} (2 = one broadcast + one promo)")  # fmt: skip
        assert Enrollment.objects.filter(series=series).count() == options.contacts
    finally:
        sink.stop()
        cleanup(workspace)


def waiting_rows(workspace: Workspace, series: Series, count: int, keys: range) -> None:
    """`count` enrollments parked on the wait, due in a week: up to `len(keys)` per contact
    (entry keys), so a million need no million contacts."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO automations_enrollment (
                workspace_id, series_id, version_id, contact_id, entry_key, entry_data, entry_event_id, state,
                step_key, step_started_at, due_at, wait_event, wait_key, holdout, entered_at, end_reason, hops
            )
            SELECT %s, %s, %s, c.id, 'k' || k, '{}', NULL, 'waiting', 'pause', %s, %s, '', '', false, %s, '', 1
            FROM audiences_contact c CROSS JOIN generate_series(%s, %s) AS k
            WHERE c.workspace_id = %s
            ORDER BY c.id LIMIT %s
            """,
            [workspace.pk, series.pk, series.live_version_id, clock.now(), clock.now() + dt.timedelta(days=7),
             clock.now(), keys.start, keys.stop - 1, workspace.pk, count],
        )  # fmt: skip
        cursor.execute("VACUUM ANALYZE automations_enrollment")


def tick_rounds(workspace: Workspace, series: Series, due: int, repeat: int) -> list[float]:
    """Make `due` of the waiting due now, time one tick, undo what it did; `repeat` times."""
    seconds = []
    for _round in range(repeat):
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE automations_enrollment SET due_at = %s
                WHERE id IN (SELECT id FROM automations_enrollment WHERE series_id = %s AND ended_at IS NULL
                             ORDER BY random() LIMIT %s)
                RETURNING id
                """,
                [clock.now() - dt.timedelta(minutes=1), series.pk, due],
            )
            ids = [row[0] for row in cursor.fetchall()]
        started = time.perf_counter()
        ran = run_due_enrollments()
        seconds.append(time.perf_counter() - started)
        assert ran == due, ran
        # Back to waiting, for the next round (their Messages and traces go).
        Message.objects.filter(workspace=workspace).delete()
        Trace.objects.filter(enrollment_id__in=ids).delete()
        Enrollment.objects.filter(pk__in=ids).update(
            state="waiting", step_key="pause", ended_at=None, end_reason="", hops=1,
            due_at=clock.now() + dt.timedelta(days=7),
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE automations_enrollment, automations_trace, campaigns_message")
    return seconds


def tick_scale(options: argparse.Namespace) -> None:
    workspace = scratch_workspace("tick")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                    city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
                SELECT %s, 't' || n || '@tick.bench.example', '', 'T' || n, '', '', '', '', '', '', '', '{}', '{}',
                       'bench', now(), now()
                FROM generate_series(1, %s) AS n
                """,
                [workspace.pk, options.tick_contacts],
            )
        template = EmailTemplate.objects.create(workspace=workspace, name="tick", subject="Hi", mjml=send_bench.MJML)
        series = promo(workspace, template, MailingList.objects.create(workspace=workspace, name="none"), "tick")
        Series.objects.filter(pk=series.pk).update(started_at=clock.now())  # its audience is made here
        per_contact = -(-options.waiting // options.tick_contacts)
        waiting_rows(workspace, series, options.small, range(1, 2))
        small = tick_rounds(workspace, series, options.due, options.repeat)
        live = Enrollment.objects.filter(series=series, ended_at__isnull=True).count()
        print(f"(c) tick finding {options.due:,} due among {live:,} waiting: median {statistics.median(small):.3f}s "
              f"[{', '.join(f'{x:.3f}' for x in small)}]")  # fmt: skip
        waiting_rows(workspace, series, options.waiting - options.small, range(2, per_contact + 2))
        big = tick_rounds(workspace, series, options.due, options.repeat)
        live_big = Enrollment.objects.filter(series=series, ended_at__isnull=True).count()
        print(f"(c) tick finding {options.due:,} due among {live_big:,} waiting: median {statistics.median(big):.3f}s "
              f"[{', '.join(f'{x:.3f}' for x in big)}]; ratio {statistics.median(big) / statistics.median(small):.2f} "
              f"(target ≤ 1.5)")  # fmt: skip
    finally:
        cleanup(workspace)


def cleanup(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        for table in (
            "automations_trace",
            "automations_enrollment",
            "automations_pendinghook",
            "audiences_subscription",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
        cursor.execute("UPDATE automations_series SET live_version_id = NULL WHERE workspace_id = %s", [workspace.pk])
        cursor.execute(
            "DELETE FROM automations_seriesversion WHERE series_id IN "
            "(SELECT id FROM automations_series WHERE workspace_id = %s)",
            [workspace.pk],
        )
    send_bench.cleanup(workspace)


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000, help="(a), (b): contacts entering at once")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--waiting", type=int, default=1_000_000, help="(c): enrollments waiting in the big tick")
    parser.add_argument("--small", type=int, default=10_000, help="(c): enrollments waiting in the small tick")
    parser.add_argument("--due", type=int, default=1_000, help="(c): of them due at the tick")
    parser.add_argument("--tick-contacts", type=int, default=100_000, help="(c): contacts the waiting belong to")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-send", action="store_true", help="leave (b) out")
    parser.add_argument("--only", choices=["a", "b", "c"], help="run one part")
    options = parser.parse_args(sys.argv[1:])

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE automations_enrollment, automations_trace, campaigns_message")
    try:
        if options.only in (None, "a"):
            workspace = scratch_workspace("enroll")
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        """
                        INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name,
                            gender, phone, city, country, time_zone, locale, attributes, tags, source, created_at,
                            updated_at)
                        SELECT %s, 'e' || n || '@enroll.bench.example', '', 'E' || n, '', '', '', '', '', '', '',
                               '{}', '{}', 'bench', now(), now()
                        FROM generate_series(1, %s) AS n
                        """,
                        [workspace.pk, options.contacts],
                    )
                promo_list = subscribe_all(workspace)
                template = EmailTemplate.objects.create(
                    workspace=workspace, name="enroll", subject="Hi", mjml=send_bench.MJML
                )
                enroll_rounds(workspace, template, promo_list, options.repeat)
            finally:
                cleanup(workspace)
        if options.only in (None, "b") and not options.skip_send:
            first_emails(options)
        if options.only in (None, "c"):
            tick_scale(options)
    finally:
        send_bench.shutil.rmtree(send_bench.TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
