"""Benchmark of delivery: messages through the real worker path to an SMTP sink in
another process, against a raw smtplib loop pushing the same pre-rendered messages to the same
sink.

1. starts the sink (bench/smtp_sink.py: aiosmtpd, one line per recipient written before the
   250 reply) in a process of its own;
2. seeds a scratch workspace: `--messages` contacts (first name, city, external id), an SMTP
   provider pointing at the sink, and a personalised template (greeting, the event's products with
   images, prices and links, a coupon, a button; the workspace's footer with the postal address
   and the unsubscribe link; open and click tracking with UTM parameters on): ~5 KB of HTML
   of its own, ~9 KB as sent (MJML's boilerplate and the text part included);
3. raw loop: renders `--raw-sample` of the messages once through the same composer (not timed),
   then one smtplib connection sends `--messages` of them (cycled) with sendmail(), each to an
   address of its own: the speed of light of this sink for these bytes;
4. worker path: starts `--workers` Celery worker processes (`celery -A esp worker --pool prefork
   --concurrency N`; 1 × 4 by default; SEND_CONCURRENCY = workers × N) on a queue of their own,
   queues the messages with `messages_enqueue` (one INSERT … SELECT; the drain task starts after commit,
   as in production) and times until no message is queued, claimed or sending. Beat is played by
   this process (a tick every 5 s). Worker memory (RSS of the pool processes) is sampled;
5. prints messages/s of both and the ratio, worker RSS, CPU per message (workers, sink, the
   PostgreSQL backends of this database), and the duplicates the sink counted (there must be
   none); then deletes the scratch workspace and its rows, the queue, and the files.

    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/send.py --messages 200000
    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/send.py --messages 5000

`--pgbouncer` runs the same through a PgBouncer in transaction pooling that the benchmark starts
(tests/pgbouncer.py; Debian's pgbouncer package, `make pgbouncer`): this process and the
workers connect to it, it to the database of DATABASE_URL.

Targets: >= 1,000 messages/s through the worker path, >= 60 % of the raw loop, no duplicates.
`--in-process` runs the drain in this process instead of Celery workers (with `--profile FILE`,
under cProfile; with `--steps`, the CPU time of each of the sender's steps) to see where the
time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
SETTINGS_MODULE = "bench_send_settings"
RUN = f"bench-send-{uuid.uuid4().hex[:8]}"
QUEUE = RUN
TMP = Path(tempfile.mkdtemp(prefix="esp-bench-send-"))
# This process and the workers share the settings: the app's own, with the tasks on a queue of
# their own (nothing of a `make run` nearby takes them, nor they its tasks).
(TMP / f"{SETTINGS_MODULE}.py").write_text(
    f"from esp.settings.base import *  # noqa\nCELERY_TASK_DEFAULT_QUEUE = {QUEUE!r}\n"
    # The SMTP sink listens on loopback, which the outbound guard refuses unless allowed.
    "OUTBOUND_ALLOWED_HOSTS = ['127.0.0.1']\n"
)
sys.path.insert(0, str(TMP))
os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE


def _through_pgbouncer() -> Any:
    """With --pgbouncer, this process and the workers reach the database through a PgBouncer
    in transaction pooling started here (before Django reads DATABASE_URL)."""
    if "--pgbouncer" not in sys.argv[1:]:
        return None
    from tests.pgbouncer import PgBouncer

    # (Not through esp.settings: importing it now would read DATABASE_URL before it changes.)
    url = os.environ.get("DATABASE_URL") or next(
        (line.split("=", 1)[1].strip() for line in (BASE_DIR / "var" / "embedded.env").read_text().splitlines()
         if line.startswith("DATABASE_URL=")),
        "",
    )  # fmt: skip
    bouncer = PgBouncer(url).start()
    os.environ["DATABASE_URL"] = bouncer.url
    os.environ["DATABASE_POOLER"] = "pgbouncer"
    print(f"through PgBouncer (transaction pooling) at {bouncer.url}")
    return bouncer


PGBOUNCER = _through_pgbouncer()

import django  # noqa: E402

django.setup()

from bench_email import MJML, PRODUCTS, SUBJECT  # noqa: E402  (bench/ is on sys.path)
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from campaigns.delivery.composer import compose, contact_as_dict  # noqa: E402
from campaigns.models import (  # noqa: E402
    DeliverySettings,
    EmailTemplate,
    Message,
    MessageClass,
    Provider,
)
from esp.models import Workspace  # noqa: E402


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:13]) / ticks  # utime stime
    return total


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    found = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found.append(child)
        found.extend(descendants(child))
    return found


def backend_pids(database: str) -> list[int]:
    marker = f" {database} "
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres:") and marker in title:
                pids.append(int(entry.name))
    return pids


class CpuWatch(threading.Thread):
    """Peak RSS and CPU seconds of a changing set of processes (pool children come and go)."""

    def __init__(self, pids: callable) -> None:  # type: ignore[valid-type]
        super().__init__(daemon=True)
        self.pids = pids
        self.cpu: dict[int, float] = {}
        self.start_cpu: dict[int, float] = {}
        self.peak_rss: dict[int, float] = {}
        self.done = threading.Event()

    def sample(self) -> None:
        for pid in self.pids():
            cpu = cpu_seconds([pid])
            self.start_cpu.setdefault(pid, cpu if not self.cpu else 0.0)
            self.cpu[pid] = cpu
            self.peak_rss[pid] = max(self.peak_rss.get(pid, 0.0), rss_mb(pid))

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.sample()

    def begin(self) -> None:
        self.sample()
        self.start_cpu = dict(self.cpu)
        self.start()

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.sample()
        return sum(value - self.start_cpu.get(pid, 0.0) for pid, value in self.cpu.items())


class Sink:
    def __init__(self) -> None:
        self.path = TMP / "received.txt"
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "bench" / "smtp_sink.py"), "--out", str(self.path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            raise SystemExit(f"sink did not start: {line!r}")
        self.port = int(line.split()[1])

    def counts(self) -> Counter[str]:
        return Counter(self.path.read_text().split()) if self.path.exists() else Counter()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def seed(workspace: Workspace, count: int, sink_port: int) -> EmailTemplate:
    from campaigns.providers.services import provider_create

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
            SELECT %s, 'w' || n || '@bench.example', 'C' || (100000 + n),
                   (ARRAY['Anna', 'Ben', 'Chloé', 'Дмитрий', ''])[1 + n %% 5], 'Smith', '', '',
                   (ARRAY['Berlin', 'Paris', '', 'Москва'])[1 + n %% 4], 'DE', '', '', '{}', '{}', 'bench',
                   now() - interval '400 days', now()
            FROM generate_series(1, %s) AS n
            """,
            [workspace.pk, count],
        )
        cursor.execute("ANALYZE audiences_contact")
    provider_create(
        workspace=workspace,
        name="sink",
        kind="smtp",
        credentials={"host": "127.0.0.1", "port": sink_port, "use_tls": False, "timeout": 30},
        is_default=True,
    )
    DeliverySettings.objects.create(workspace=workspace, utm_parameters={"utm_source": "esp", "utm_medium": "email"})
    return EmailTemplate.objects.create(
        workspace=workspace,
        name="bench",
        subject=SUBJECT,
        mjml=MJML,
    )


def raw_loop(
    workspace: Workspace, template: EmailTemplate, options: argparse.Namespace, port: int
) -> tuple[float, int]:
    """Pre-render a sample through the composer (untimed), then time one smtplib connection
    sending `--messages` of them. Returns (seconds, average message bytes)."""
    from audiences.models import Contact

    rules = DeliverySettings.objects.get(workspace=workspace)
    provider = Provider.objects.get(workspace=workspace)
    from campaigns.providers.registry import default_sender

    sender = default_sender(workspace)
    sample: list[tuple[str, bytes]] = []
    for index, person in enumerate(Contact.objects.filter(workspace=workspace).order_by("id")[: options.raw_sample]):
        message = Message(
            id=10**12 + index, workspace=workspace, contact=person, source=f"raw:{index}", template=template,
            message_class=MessageClass.MARKETING, provider=provider, to_email=person.email,
        )  # fmt: skip
        composed = compose(
            message, workspace=workspace, template=template, contact=contact_as_dict(person),
            event={"products": PRODUCTS}, delivery_settings=rules, sender=sender, to_email=person.email,
        )  # fmt: skip
        # The bytes the worker path hands to SMTP for such a message.
        sample.append((composed.prepared.envelope_from, composed.prepared.as_bytes()))
    size = sum(len(data) for _, data in sample) // len(sample)
    client = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for number in range(options.messages):
        from_address, data = sample[number % len(sample)]
        client.sendmail(from_address, [f"raw{number}@raw.bench.example"], data)
    seconds = time.perf_counter() - started
    client.quit()
    return seconds, size


def start_workers(options: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "PYTHONPATH": os.pathsep.join([str(TMP), str(BASE_DIR), os.environ.get("PYTHONPATH", "")]),
        "SEND_CONCURRENCY": str(options.workers * options.concurrency),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "SECRET_KEY": str(settings.SECRET_KEY),
    }
    workers = []
    for number in range(options.workers):
        log = (TMP / f"worker{number}.log").open("wb")
        command = [
            sys.executable, "-m", "celery", "-A", "esp", "worker", "--pool", "prefork",
            "--concurrency", str(options.concurrency), "--queues", QUEUE, "--hostname", f"{RUN}-{number}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        ]  # fmt: skip
        workers.append(subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    for number in range(options.workers):
        while b" ready." not in (TMP / f"worker{number}.log").read_bytes():
            if time.monotonic() > deadline or workers[number].poll() is not None:
                raise SystemExit((TMP / f"worker{number}.log").read_text()[-3000:])
            time.sleep(0.2)
    return workers


def outstanding(workspace: Workspace) -> bool:
    """Whether the drain has work left. Polled every 0.2 s on the cores being measured, so it
    must cost nothing: each probe is the first entry of one of the send log's partial indexes
    (message_due, message_held), in their own order so that no plan but the index scan pays.
    (Probing the workspace's rows in those states instead walked every sent row of the
    workspace: ~70 µs of PostgreSQL CPU a message at 200,000 messages.) Rows of other
    workspaces count too: the bench's workers drain them as well."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT id FROM campaigns_message WHERE state = 'queued' AND due_at <= now() "
            "ORDER BY due_at, id LIMIT 1) IS NOT NULL OR (SELECT id FROM campaigns_message "
            "WHERE state IN ('claimed', 'sending') ORDER BY claimed_at LIMIT 1) IS NOT NULL"
        )
        return bool(cursor.fetchone()[0])


def worker_path(workspace: Workspace, template: EmailTemplate, options: argparse.Namespace) -> dict[str, float]:
    from audiences.models import Contact
    from campaigns.delivery.sender import messages_send_due
    from campaigns.delivery.services import messages_enqueue
    from campaigns.tasks import send_messages

    workers = [] if options.in_process else start_workers(options)
    own_before = cpu_seconds([os.getpid()])
    times_before = os.times()
    database = str(settings.DATABASES["default"]["NAME"])
    pool = CpuWatch(lambda: [pid for worker in workers for pid in [worker.pid, *descendants(worker.pid)]])
    backends = CpuWatch(lambda: backend_pids(database))
    try:
        pool.begin()
        backends.begin()
        started = time.perf_counter()
        made = messages_enqueue(
            workspace=workspace,
            source=f"broadcast:{RUN}",
            contacts=Contact.objects.filter(workspace=workspace),
            template=template,
            message_class=MessageClass.MARKETING,
            data={"event": {"products": PRODUCTS}},
        )
        assert made == options.messages, made
        queued = time.perf_counter() - started
        if options.in_process:
            # CPU time, not wall time: waits on PostgreSQL and the sink do not show.
            profiler = cProfile.Profile(time.process_time) if options.profile else None
            steps = timed_steps() if options.steps else None
            if profiler:
                profiler.enable()
            messages_send_due()
            if profiler:
                profiler.disable()
                profiler.dump_stats(options.profile)
            if steps is not None:
                print("CPU of the sender's steps (nested: send_batch holds the rest but the claim):")
                for name, seconds in sorted(steps.items(), key=lambda item: -item[1]):
                    print(f"  {name:22s} {seconds / options.messages * 1e6:7.1f} µs/msg")
        else:
            next_tick = time.monotonic() + 5
            while outstanding(workspace):
                if any(worker.poll() is not None for worker in workers):
                    raise SystemExit("a worker died: " + (TMP / "worker0.log").read_text()[-3000:])
                if time.monotonic() >= next_tick:
                    send_messages.delay()  # what beat does every 10 s
                    next_tick = time.monotonic() + 5
                time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        pool_cpu = pool.stop()
        backend_cpu = backends.stop()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
    own = cpu_seconds([os.getpid()]) - own_before if options.in_process else 0.0
    if options.in_process:
        times = os.times()
        print(f"this process: user {(times.user - times_before.user) / options.messages * 1e6:.0f} µs/msg, "
              f"system {(times.system - times_before.system) / options.messages * 1e6:.0f} µs/msg")  # fmt: skip
    return {
        "seconds": seconds,
        "queued": queued,
        "pool_cpu": pool_cpu + own,
        # The Celery main processes (they hand tasks to the pool) apart from the pool.
        "parent_cpu": sum(pool.cpu.get(w.pid, 0.0) - pool.start_cpu.get(w.pid, 0.0) for w in workers),
        "backend_cpu": backend_cpu,
        "peak_rss": max(pool.peak_rss.values(), default=rss_mb(os.getpid())),
        "processes": len(pool.peak_rss),
    }


# The sender's steps that --steps times: (module, class or None, function), where the send loop
# looks them up (compose is called through the sender's own module).
STEPS = (
    ("campaigns.delivery.sender", None, "message_claim_batch"),
    ("campaigns.delivery.sender", "Sender", "send_batch"),
    ("campaigns.delivery.sender", "Sender", "_load"),
    ("campaigns.delivery.checks", None, "evaluate"),
    ("campaigns.delivery.sender", "Sender", "_render"),
    ("campaigns.delivery.sender", None, "render"),
    ("campaigns.delivery.sender", "Sender", "_wrap"),
    ("campaigns.delivery.sender", None, "wrap"),
    ("campaigns.delivery.sender", "Sender", "_written"),
    ("campaigns.delivery.composer", "_Prepared", "as_bytes"),
    ("campaigns.delivery.sender", "Sender", "_hand_over"),
    ("campaigns.delivery.sender", "Sender", "_mark_sending"),
    ("campaigns.providers.smtp", "SmtpTransport", "send_prepared"),
)


def timed_steps() -> dict[str, float]:
    """Wrap each of STEPS so that its CPU time (this process, user + system) is summed into the
    returned dict: what a step costs inside the send loop, with the loop's cache and system-call
    effects that a micro-benchmark of the step alone misses. For the in-process drain."""
    import importlib

    spent: dict[str, float] = {}
    for module_name, class_name, name in STEPS:
        owner: Any = importlib.import_module(module_name)
        if class_name:
            owner = getattr(owner, class_name)
        original = getattr(owner, name)

        def timed(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            began = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - began

        setattr(owner, name, timed)
    return spent


def cleanup(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        for table in ("campaigns_messageevent", "campaigns_message", "esp_outboxmessage", "audiences_contact"):
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
    workspace.delete()
    from esp.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_delete(QUEUE)


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    # Two pool processes per core of the 2-core machine: while one waits for PostgreSQL's commit
    # or the sink's reply, the other composes (measured: ~45-53 % of the raw loop with 3-4
    # processes against ~40 % with 2, on the same machine state).
    parser.add_argument("--concurrency", type=int, default=4, help="pool processes per worker")
    parser.add_argument("--raw-sample", type=int, default=1000, help="distinct pre-rendered messages of the raw loop")
    parser.add_argument(
        "--skip-raw", action="store_true", help="time the worker path only (to compare versions of the code)"
    )
    parser.add_argument(
        "--pgbouncer", action="store_true", help="reach PostgreSQL through a PgBouncer in transaction pooling"
    )
    parser.add_argument("--in-process", action="store_true", help="drain in this process instead of Celery workers")
    parser.add_argument(
        "--profile",
        help="with --in-process: write cProfile stats (CPU time) of the drain to this file",
    )
    parser.add_argument(
        "--steps", action="store_true", help="with --in-process: print the CPU time of each step of the sender"
    )
    options = parser.parse_args()
    if (options.profile or options.steps) and not options.in_process:
        parser.error("--profile and --steps measure the drain in this process: add --in-process")

    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a fresh embedded database has no tables yet
    with connection.cursor() as cursor:
        # Earlier runs leave their deleted rows behind until a vacuum (a server with autovacuum
        # off never does): every claim and update would wade through them.
        cursor.execute("VACUUM ANALYZE campaigns_message, audiences_contact")
    sink = Sink()
    workspace = Workspace.objects.create(
        name="bench send", slug=RUN, default_from_name="Bench Shop", default_from_email="shop@bench.example",
        postal_address="1 Bench Street, Springfield", time_zone="Europe/Berlin",
    )  # fmt: skip
    try:
        started = time.perf_counter()
        template = seed(workspace, options.messages, sink.port)
        print(f"seeded {options.messages:,} contacts, SMTP provider -> sink on port {sink.port}: "
              f"{time.perf_counter() - started:.1f}s")  # fmt: skip

        raw_rate = None
        if not options.skip_raw:
            sink_before = cpu_seconds([sink.process.pid])
            raw_seconds, size = raw_loop(workspace, template, options, sink.port)
            raw_sink_cpu = cpu_seconds([sink.process.pid]) - sink_before
            raw_rate = options.messages / raw_seconds
            print(f"raw smtplib loop: {options.messages:,} messages of {size:,} bytes (a sample of "
                  f"{options.raw_sample:,} pre-rendered) in {raw_seconds:.1f}s = {raw_rate:,.0f} msg/s; sink CPU "
                  f"{raw_sink_cpu / options.messages * 1e6:.0f} µs/msg")  # fmt: skip

        sink_before = cpu_seconds([sink.process.pid])
        result = worker_path(workspace, template, options)
        sink_cpu = cpu_seconds([sink.process.pid]) - sink_before
        rate = options.messages / result["seconds"]
        how = "in this process" if options.in_process else (
            f"{options.workers} Celery worker(s) × {options.concurrency} processes"
        )  # fmt: skip
        print(f"worker path ({how}): {options.messages:,} messages in {result['seconds']:.1f}s "
              f"(queued in {result['queued']:.1f}s) = {rate:,.0f} msg/s")  # fmt: skip
        if raw_rate is not None:
            print(f"ratio worker path / raw loop: {rate / raw_rate:.0%}")
        per = 1e6 / options.messages
        print(f"CPU per message: workers {result['pool_cpu'] * per:.0f} µs, PostgreSQL backends "
              f"{result['backend_cpu'] * per:.0f} µs, sink {sink_cpu * per:.0f} µs "
              f"({os.cpu_count()} cores; of the workers', the Celery main processes "
              f"{result['parent_cpu'] * per:.0f} µs)")  # fmt: skip
        print(f"worker memory: peak RSS {result['peak_rss']:.0f} MB per process "
              f"({result['processes']} processes seen)")  # fmt: skip

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT state, count(*) FROM campaigns_message WHERE workspace_id = %s GROUP BY state", [workspace.pk]
            )
            states = dict(cursor.fetchall())
        counts = sink.counts()
        worker_counts = Counter({a: n for a, n in counts.items() if a.endswith("@bench.example")})
        raw_counts = Counter({a: n for a, n in counts.items() if a.endswith("@raw.bench.example")})
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        print(f"message states: {states}")
        print(f"sink: {sum(worker_counts.values()):,} worker-path copies to {len(worker_counts):,} addresses, "
              f"{sum(raw_counts.values()):,} raw copies; duplicates: {duplicates}")  # fmt: skip
        ok = duplicates == 0 and states.get("sent") == options.messages == len(worker_counts)
        return 0 if ok else 1
    finally:
        sink.stop()
        cleanup(workspace)
        shutil.rmtree(TMP, ignore_errors=True)
        if PGBOUNCER is not None:
            connection.close()
            PGBOUNCER.stop()


if __name__ == "__main__":
    sys.exit(main())
