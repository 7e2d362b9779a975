"""Benchmark of event ingestion through the real path: the Segment tracking API
(`POST /v1/batch`) served by gunicorn on PostgreSQL, against COPY of the same rows.

1. seeds two scratch workspaces with the same known customers (external_id `cust-N`), one
   for the HTTP run and one for the COPY run, and an API key with `events:write`;
2. starts gunicorn (sync workers) on a free local port against the current DATABASE_URL and
   CELERY_BROKER_URL, with the tasks it enqueues sent to a queue of their own (purged at the
   end), so no running worker processes them during the measurement;
3. `--clients` threads send `--events` events as `/v1/batch` requests of `--batch` events, in
   Segment's own message shape (what analytics-python sends: per-message context, timestamp,
   messageId, batch-level sentAt): page views and tracks of anonymous visitors, tracks of
   known customers (e-commerce spec events with products), and a few identifies with traits.
   Every request must answer 200 {"success": true}; events/s is the total over the wall time;
4. checks that every event was stored once, with one PendingEvents row per request;
5. writes the stored rows out (psql's \\copy TO, not timed) and loads them with one COPY FROM
   STDIN into audiences_event of the second workspace, contacts mapped: the same rows, the
   same table with the same indexes and foreign keys, without Python or HTTP;
6. prints events/s for both and the ratio, and the CPU time each path cost per event
   (gunicorn plus the PostgreSQL backends of this database, told apart from other databases'
   by their process titles): on a shared machine the wall-clock ratio moves with the
   neighbours, the CPU per event much less; then deletes the scratch workspaces, their rows
   and the queue.

    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/ingest.py --events 1000000
    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/ingest.py --events 50000

Targets: >= 15,000 events/s through /v1/batch, and >= 25 % of COPY. Results in bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from esp import services  # noqa: E402
from esp.models import Workspace  # noqa: E402

PRODUCTS = [
    ("sku-1001", "Trail Running Shoe", "Shoes", 89.90), ("sku-1002", "Rain Jacket", "Outerwear", 129.00),
    ("sku-1003", "Merino Socks", "Accessories", 14.50), ("sku-1004", "Daypack 20L", "Bags", 59.00),
    ("sku-1005", "Headlamp", "Gear", 34.95), ("sku-1006", "Water Bottle", "Gear", 19.00),
    ("sku-1007", "Fleece Pullover", "Outerwear", 74.00), ("sku-1008", "Cap", "Accessories", 22.00),
]  # fmt: skip
PAGES = [("Home", "/"), ("Shoes", "/c/shoes"), ("Outerwear", "/c/outerwear"), ("Sale", "/sale"), ("Cart", "/cart")]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
]
LIBRARY = {"name": "analytics-python", "version": "2.4.0"}
SETTINGS_MODULE = "bench_ingest_settings"


def event(i: int, rng: random.Random, run: str, contacts: int, identify_percent: float, base: datetime) -> dict:
    """Event number i of the run, in the shape analytics-python sends."""
    roll = rng.random() * 100
    customer = rng.randrange(contacts)
    anonymous_id = f"anon-{customer}-{rng.randrange(3)}"
    message: dict[str, Any] = {
        # Random like the SDKs' uuid4 (sequential ids would make every insert hit the same page
        # of the unique index), but the same in every run with the same seed.
        "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if not run.startswith("warm-")
        else f"{run}-{i}",
        "timestamp": (base + timedelta(milliseconds=i)).isoformat(timespec="milliseconds"),
        "context": {
            "library": LIBRARY,
            "ip": f"203.0.113.{customer % 250}",
            "userAgent": AGENTS[customer % 2],
            "locale": "de-DE",
        },
    }
    if roll < identify_percent:
        message.update(
            type="identify",
            userId=f"cust-{customer}",
            anonymousId=anonymous_id,
            traits={"email": f"c{customer}@bench.example", "firstName": "Ann", "plan": rng.choice(["free", "pro"])},
        )
    elif roll < 30:
        name, path = rng.choice(PAGES)
        message.update(
            type="page",
            anonymousId=anonymous_id,
            name=name,
            properties={"path": path, "url": f"https://shop.example{path}", "title": f"{name} | Shop"},
        )
    else:
        sku, product, category, price = rng.choice(PRODUCTS)
        known = roll >= 45
        message.update(type="track", **({"userId": f"cust-{customer}"} if known else {"anonymousId": anonymous_id}))
        kind = rng.random()
        if kind < 0.55:
            message.update(
                event="Product Viewed",
                properties={"product_id": sku, "sku": sku, "name": product, "category": category, "price": price},
            )
        elif kind < 0.8:
            message.update(
                event="Product Added",
                properties={"cart_id": f"cart-{customer}", "product_id": sku, "price": price, "quantity": 1},
            )
        elif kind < 0.9:
            message.update(event="Checkout Started", properties={"order_id": f"o-{run}-{i}", "value": price})
        else:
            items = [rng.choice(PRODUCTS) for _ in range(rng.randrange(1, 4))]
            total = round(sum(p[3] for p in items), 2)
            message.update(
                event="Order Completed",
                properties={
                    "order_id": f"o-{run}-{i}",
                    "total": total,
                    "revenue": total,
                    "currency": "EUR",
                    "products": [
                        {"product_id": p[0], "sku": p[0], "name": p[1], "category": p[2], "price": p[3], "quantity": 1}
                        for p in items
                    ],
                },
            )
    return message


class Load:
    """`clients` threads, each with one keep-alive connection, sending batches in turn."""

    def __init__(self, port: int, key: str, options: argparse.Namespace, run: str, base: datetime) -> None:
        self.port, self.options, self.run, self.base = port, options, run, base
        self.auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        self.next_batch = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.batches = (options.events + options.batch - 1) // options.batch

    def take(self) -> int | None:
        with self.lock:
            if self.next_batch >= self.batches or self.failures:
                return None
            self.next_batch += 1
            return self.next_batch - 1

    def body(self, number: int) -> bytes:
        first = number * self.options.batch
        last = min(first + self.options.batch, self.options.events)
        rng = random.Random(number)
        items = [
            event(i, rng, self.run, self.options.contacts, self.options.identify_percent, self.base)
            for i in range(first, last)
        ]
        sent_at = datetime.now(UTC).isoformat()
        return orjson.dumps({"batch": items, "sentAt": sent_at, "context": {"library": LIBRARY}})

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        while (number := self.take()) is not None:
            body = self.body(number)
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/batch", body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                self.failures.append(f"batch {number}: {error!r}")
                return
            self.latencies.append(time.perf_counter() - started)
            if response.status != 200 or answer != b'{"success":true}':
                self.failures.append(f"batch {number}: {response.status} {answer[:300]!r}")
        conn.close()

    def run_all(self) -> float:
        threads = [threading.Thread(target=self.client) for _ in range(self.options.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (and their reaped children) from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


class BackendCpu(threading.Thread):
    """CPU seconds of the PostgreSQL backends serving one database, told apart from other
    databases' by their process title ("postgres: user DB host(port) state") — the machine may
    be shared. Sampled every 0.2 s, so a backend that exits in between (Django recycles its
    connections after CONN_MAX_AGE) keeps its last reading. Nothing of PostgreSQL's background
    processes (WAL writer, checkpointer) is counted."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.marker = f" {database} "
        self.start_readings: dict[int, float] | None = None
        self.readings: dict[int, float] = {}
        self.done = threading.Event()

    def sample(self) -> dict[int, float]:
        readings = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if title.startswith("postgres:") and self.marker in title:
                    readings[int(entry.name)] = cpu_seconds([int(entry.name)])
            except OSError:
                continue
        return readings

    def run(self) -> None:
        self.start_readings = self.sample()
        while not self.done.wait(0.2):
            self.readings.update(self.sample())

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.readings.update(self.sample())
        start = self.start_readings or {}
        return sum(value - start.get(pid, 0.0) for pid, value in self.readings.items())


def gunicorn_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [master, *(int(pid) for pid in children.read_text().split())] if children.exists() else [master]


def start_gunicorn(port: int, workers: int, queue: str, tmp: Path) -> subprocess.Popen[bytes]:
    # The app's own settings, but the tasks it enqueues go to a queue no worker reads: the
    # measurement is ingestion, and nothing of the bench is processed by a `make run` nearby.
    (tmp / f"{SETTINGS_MODULE}.py").write_text(
        f"from esp.settings.base import *  # noqa\nCELERY_TASK_DEFAULT_QUEUE = {queue!r}\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "PYTHONPATH": os.pathsep.join([str(tmp), str(BASE_DIR), os.environ.get("PYTHONPATH", "")]),
        "DEBUG": "false",
    }
    command = [
        sys.executable, "-m", "gunicorn", "esp.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", "sync", "--preload", "--no-control-socket", "--log-level", "warning", "--timeout", "120",
    ]  # fmt: skip
    log = (tmp / "gunicorn.log").open("wb")
    server = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited: {(tmp / 'gunicorn.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def seed(workspace: Workspace, contacts: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
            SELECT %s, 'c' || n || '@bench.example', 'cust-' || n, '', '', '', '', '', 'DE', '', '', '{}', '{}',
                   'bench', now(), now()
            FROM generate_series(0, %s - 1) AS n
            """,
            [workspace.pk, contacts],
        )


def psql_binary() -> str:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        candidate = POSTGRES_BIN_PATH / "psql"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("psql") or "/usr/bin/psql"


def psql(command: str) -> None:
    db = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
    args = [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", str(db["NAME"])]
    for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER")):
        if db.get(key):
            args += [flag, str(db[key])]
    subprocess.run([*args, "-c", command], env=env, check=True)


COLUMNS = (
    "workspace_id, contact_id, type, name, properties, context, user_id, anonymous_id, message_id, occurred_at, "
    "received_at"
)


def copy_baseline(source: Workspace, target: Workspace, tmp: Path, database: str) -> tuple[float, int, float]:
    """The stored rows of `source` (but the warm-up's), written to a file with the contacts mapped
    to `target`'s, then loaded with COPY into audiences_event: (seconds, rows, backend CPU seconds)."""
    path = tmp / "events.copy"
    # The contact map is built once (a hash join), not probed per event.
    psql(
        f"\\copy (WITH map AS MATERIALIZED (SELECT c.id AS source, t.id AS target FROM audiences_contact c "
        f"JOIN audiences_contact t ON t.workspace_id = {target.pk} AND t.external_id = c.external_id "
        f"AND t.external_id <> '' WHERE c.workspace_id = {source.pk} AND c.external_id <> '') "
        f"SELECT {target.pk}, m.target, e.type, e.name, e.properties, e.context, e.user_id, e.anonymous_id, "
        f"e.message_id, e.occurred_at, e.received_at FROM audiences_event e LEFT JOIN map m ON m.source = e.contact_id "
        f"WHERE e.workspace_id = {source.pk} AND e.message_id NOT LIKE 'warm-%' ORDER BY e.id) TO '{path}'"
    )
    checkpoint()
    backends = BackendCpu(database)
    backends.start()
    # COPY from this process's connection (psql's \\copy is the same protocol), so that its
    # backend outlives the load and its CPU time is read exactly.
    started = time.perf_counter()
    with connection.cursor() as cursor, path.open() as source:
        cursor.cursor.copy_expert(f"COPY audiences_event ({COLUMNS}) FROM STDIN", source, size=4 * 1024 * 1024)
    seconds = time.perf_counter() - started
    cpu = backends.stop()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audiences_event WHERE workspace_id = %s", [target.pk])
        (rows,) = cursor.fetchone()
    return seconds, rows, cpu


def checkpoint() -> None:
    """Start each measurement with no dirty pages of the one before (needs a superuser)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except Exception:  # noqa: BLE001 — not allowed: measure without it
        pass


def cleanup(workspaces: list[Workspace], queue: str) -> None:
    ids = [w.pk for w in workspaces]
    with connection.cursor() as cursor:
        # Set-based: Django's collector would walk a million events one cascade at a time.
        for table in (
            "audiences_event", "audiences_pendingevents", "audiences_contactalias", "audiences_customerfacts",
            "audiences_contact",
        ):  # fmt: skip
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = ANY(%s)", [ids])
    for workspace in workspaces:
        workspace.delete()
    from esp.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_delete(queue)


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows in a log
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500, help="events per /v1/batch request")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--contacts", type=int, default=50_000, help="known customers (cust-N)")
    parser.add_argument("--identify-percent", type=float, default=0.2, help="share of identify calls")
    parser.add_argument("--no-copy", action="store_true", help="skip the COPY baseline")
    options = parser.parse_args()

    run = f"bench-{uuid.uuid4().hex[:8]}"
    queue = f"bench-ingest-{run}"
    base = datetime.now(UTC) - timedelta(days=30)
    tmp = Path(tempfile.mkdtemp(prefix="esp-bench-ingest-"))
    http_ws = Workspace.objects.create(name="bench ingest", slug=f"{run}-http")
    copy_ws = Workspace.objects.create(name="bench ingest copy", slug=f"{run}-copy")
    server: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        seed(http_ws, options.contacts)
        seed(copy_ws, options.contacts)
        key = services.api_key_create(workspace=http_ws, name="bench", scopes=["events:write"], created_by=None).secret
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audiences_event")
            cursor.execute("ANALYZE audiences_contact")
        print(f"seeded {options.contacts:,} customers in each of two workspaces: {time.perf_counter() - started:.1f}s")

        port = free_port()
        server = start_gunicorn(port, options.workers, queue, tmp)
        print(f"gunicorn: {options.workers} sync workers on 127.0.0.1:{port} (queue {queue})")
        # Warm-up: every worker has imported the app (--preload) but loads the URL modules and
        # opens its database, cache and broker connections on its first requests (a second of
        # CPU each, measured); these events go to the same workspace and are not counted.
        warm_options = {**vars(options), "events": 20 * 8 * options.workers, "batch": 20}
        warm = Load(port, key, argparse.Namespace(**warm_options), f"warm-{run}", base)
        warm.run_all()
        assert not warm.failures, warm.failures[:3]

        checkpoint()
        load = Load(port, key, options, run, base)
        database = str(settings.DATABASES["default"]["NAME"])
        backends = BackendCpu(database)
        backends.start()
        cpu_before = cpu_seconds(gunicorn_pids(server.pid))
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        seconds = load.run_all()
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = cpu_seconds(gunicorn_pids(server.pid)) - cpu_before
        database_cpu = backends.stop()
        client_cpu = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
        if load.failures:
            print("FAILED requests:", *load.failures[:5], sep="\n  ")
            return 1
        rate = options.events / seconds
        latencies = sorted(load.latencies)
        print(
            f"/v1/batch: {options.events:,} events in {load.batches:,} requests of {options.batch} from "
            f"{options.clients} clients in {seconds:.1f}s = {rate:,.0f} events/s; request latency p50 "
            f"{statistics.median(latencies) * 1000:.0f} ms, p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms"
        )
        http_cpu_us = (server_cpu + database_cpu) / options.events * 1e6
        print(
            f"CPU: gunicorn {server_cpu:.1f}s, its PostgreSQL backends {database_cpu:.1f}s = {http_cpu_us:.0f} µs "
            f"an event ({(server_cpu + database_cpu) / seconds:.2f} of {os.cpu_count()} cores busy with it); "
            f"load generator {client_cpu:.1f}s"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(DISTINCT message_id), count(contact_id) FROM audiences_event "
                "WHERE workspace_id = %s AND message_id NOT LIKE 'warm-%%'",
                [http_ws.pk],
            )
            stored, distinct, linked = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM audiences_pendingevents WHERE workspace_id = %s", [http_ws.pk])
            (pending,) = cursor.fetchone()
        assert stored == distinct == options.events, (stored, distinct)
        pending -= warm.batches
        assert pending == load.batches, (pending, load.batches)
        print(f"stored {stored:,} events once each ({linked:,} linked to a known customer); {pending:,} pending rows")

        if not options.no_copy:
            copy_seconds, copied, copy_cpu = copy_baseline(http_ws, copy_ws, tmp, database)
            assert copied == stored, (copied, stored)
            copy_rate = copied / copy_seconds
            copy_cpu_us = copy_cpu / copied * 1e6
            print(
                f"COPY of the same rows into audiences_event: {copy_seconds:.1f}s = {copy_rate:,.0f} events/s; "
                f"PostgreSQL backend CPU {copy_cpu:.1f}s = {copy_cpu_us:.0f} µs an event"
            )
            print(
                f"/v1/batch / COPY: {rate / copy_rate:.0%} by wall time; {copy_cpu_us / http_cpu_us:.0%} by CPU "
                "per event (the part of the comparison that a busy machine does not move)"
            )
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        cleanup([http_ws, copy_ws], queue)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
