"""Benchmark of a series trigger's latency: from an event posted by the shop to its email in the
SMTP sink, with web, worker and beat running as `make run` runs them.

1. seeds a scratch workspace: contacts (one per event to come), an API key, an SMTP provider
   pointing at bench/smtp_sink.py, a template, and a live series: on `Latency Probe`, send that
   template at once (re-entry every time, smart sending off);
2. starts gunicorn, a Celery worker and beat with esp.embedded's own command lines, on a queue
   of this run's own (bench/send.py's way: a settings module in a temporary directory);
3. at each `--rates` (50 and 200 events/s) for `--seconds` (120), posts `track` events through the
   Segment Python SDK (segment-analytics-python, batching every `--upload-interval` s) and stamps
   each one when handed to the SDK; a thread stamps each recipient line the sink writes (polled
   every 5 ms); meanwhile a Celery no-op (`esp.ping`) round trip is timed every second;
4. prints p50/p95/p99/max from `track()` to the sink, the ping round trip (idle and under load),
   and the backlog (events posted but not yet in the sink) over the phase's first and last
   thirds: a backlog that grows means the pipeline cannot keep the pace.

The path measured: POST /v1/batch → events stored (+ a PendingEvents row) → `audiences.process_events`
(identity, facts, segments) → the "events stored" hook → PendingHook + `automations.hook_arrived` →
enrollment and its first step (a Message) → `campaigns.send_messages` (the drain) → SMTP.

    DATABASE_URL=…/esp_bench .venv/bin/python bench/trigger_latency.py
    DATABASE_URL=…/esp_bench .venv/bin/python bench/trigger_latency.py --rates 50 --seconds 20

Targets: p50 < 1 s, p99 < 5 s, no growing backlog.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
# bench/segment.py would shadow the Segment SDK's `segment` package: bench/ leaves the path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]
sys.path.insert(0, str(BASE_DIR))
RUN = f"bench-latency-{uuid.uuid4().hex[:8]}"
TMP = Path(tempfile.mkdtemp(prefix="esp-bench-latency-"))
SETTINGS_MODULE = "bench_latency_settings"
(TMP / f"{SETTINGS_MODULE}.py").write_text(
    f"from esp.settings.base import *  # noqa\nCELERY_TASK_DEFAULT_QUEUE = {RUN!r}\n"
    "OUTBOUND_ALLOWED_HOSTS = ['127.0.0.1']\n"
)
sys.path.insert(0, str(TMP))
os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from automations.services import SeriesInput, series_create, series_publish  # noqa: E402
from campaigns.models import EmailTemplate  # noqa: E402
from campaigns.providers.services import provider_create  # noqa: E402
from esp import embedded  # noqa: E402
from esp.models import Workspace  # noqa: E402
from esp.services import api_key_create  # noqa: E402
from esp.tasks import ping  # noqa: E402

EVENT = "Latency Probe"
DOMAIN = "latency.bench.example"


class Sink:
    """bench/smtp_sink.py, and a thread that stamps each recipient line when it appears."""

    def __init__(self) -> None:
        self.path = TMP / "received.txt"
        self.path.touch()
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "bench" / "smtp_sink.py"), "--out", str(self.path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            raise SystemExit(f"sink did not start: {line!r}")
        self.port = int(line.split()[1])
        self.arrived: dict[str, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tail, daemon=True)
        self.thread.start()

    def _tail(self) -> None:
        with self.path.open() as lines:
            pending = ""
            while not self.done.is_set():
                chunk = lines.read()
                if not chunk:
                    time.sleep(0.005)
                    continue
                now = time.monotonic()
                pending += chunk
                *complete, pending = pending.split("\n")
                for address in complete:
                    self.arrived.setdefault(address, now)

    def stop(self) -> None:
        self.done.set()
        self.process.terminate()
        self.process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(workspace: Workspace, count: int, sink_port: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
            SELECT %s, 'l' || n || '@' || %s, 'lat-' || n, 'L' || n, '', '', '', '', '', '', '', '{}', '{}',
                   'bench', now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [workspace.pk, DOMAIN, count],
        )
        cursor.execute("ANALYZE audiences_contact")
    provider_create(
        workspace=workspace, name="sink", kind="smtp", is_default=True,
        credentials={"host": "127.0.0.1", "port": sink_port, "use_tls": False, "timeout": 30},
    )  # fmt: skip
    template = EmailTemplate.objects.create(
        workspace=workspace,
        name="probe",
        subject="Hello {{ contact.first_name }}",
        mjml="<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ contact.first_name }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>",
    )
    series = series_create(
        workspace=workspace,
        data=SeriesInput(
            name="latency", kind="trigger", re_entry="always", smart_sending=False,
            trigger={"type": "event", "event": EVENT},
            steps={"start": "hello", "steps": [{"key": "hello", "type": "send", "template": template.pk}]},
        ),
    )  # fmt: skip
    series_publish(workspace=workspace, series_id=series.pk)
    return api_key_create(workspace=workspace, name="latency", scopes=["events:write"], created_by=None).secret


class Stack:
    """Web, worker and beat as esp.embedded starts them, on this run's queue."""

    def __init__(self, port: int, concurrency: int) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "PYTHONPATH": os.pathsep.join([str(TMP), str(BASE_DIR), os.environ.get("PYTHONPATH", "")]),
            "SECRET_KEY": str(settings.SECRET_KEY),
            "LOG_LEVEL": "WARNING",
            # The worker logs each task's run time: where the pool's time goes (task_summary).
            "LOG_LEVEL_CELERY": "INFO",
            "LOG_FORMAT": "text",
            "WORKER_CONCURRENCY": str(concurrency),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "ALLOW_HTTP_PUBLIC_URL": "true",
        }
        commands = {
            "web": embedded.web_command("127.0.0.1", port),
            "worker": [sys.executable, "-m", "celery", "-A", "esp", "worker", "--loglevel", "INFO",
                       "--concurrency", str(concurrency), "--queues", RUN, "--hostname", f"{RUN}@%h",
                       "--without-gossip", "--without-mingle"],
            "beat": [sys.executable, "-m", "celery", "-A", "esp", "beat", "--loglevel", "INFO",
                     "--schedule", str(TMP / "beat-schedule"), "--pidfile", str(TMP / "beat.pid")],
        }  # fmt: skip
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        for name, command in commands.items():
            with (TMP / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        deadline = time.monotonic() + 90
        while b" ready." not in (TMP / "worker.log").read_bytes():
            self.check(deadline)
        while True:
            self.check(deadline)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)

    def check(self, deadline: float) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited:\n" + (TMP / f"{name}.log").read_text()[-3000:])
        if time.monotonic() > deadline:
            raise SystemExit("the stack did not start:\n" + (TMP / "worker.log").read_text()[-3000:])
        time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def task_summary() -> str:
    """Tasks the worker ran so far, by name: how many, their total and longest run time."""
    runs: dict[str, list[float]] = {}
    for line in (TMP / "worker.log").read_text(errors="replace").splitlines():
        found = re.search(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([\d.]+)s", line)
        if found:
            runs.setdefault(found.group(1), []).append(float(found.group(2)))
    return "; ".join(
        f"{name} ×{len(times)} total {sum(times):.1f}s max {max(times):.2f}s"
        for name, times in sorted(runs.items(), key=lambda item: -sum(item[1]))
    )


def ping_once() -> float:
    started = time.monotonic()
    ping.delay("latency").get(timeout=60)
    return time.monotonic() - started


class Pinger(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.samples.append(ping_once())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def phase(client: Any, sink: Sink, rate: int, seconds: float, first: int) -> dict[str, Any]:
    """Post `rate` events a second for `seconds`, numbered from `first`; wait for their mail."""
    posted: dict[str, float] = {}
    backlog: list[int] = []
    pinger = Pinger()
    pinger.start()
    total = int(rate * seconds)
    started = time.monotonic()
    next_sample = started + 1
    for index in range(total):
        due = started + index / rate
        while (now := time.monotonic()) < due:
            time.sleep(min(0.002, due - now))
        number = first + index
        posted[f"l{number}@{DOMAIN}"] = time.monotonic()
        client.track(user_id=f"lat-{number}", event=EVENT, properties={"n": number}, message_id=f"{RUN}-{number}")
        if now >= next_sample:
            backlog.append(sum(1 for address in posted if address not in sink.arrived))
            next_sample += 1
    client.flush()
    deadline = time.monotonic() + 120
    while any(address not in sink.arrived for address in posted) and time.monotonic() < deadline:
        time.sleep(0.1)
    pinger.done.set()
    pinger.join()
    latencies = [sink.arrived[a] - t for a, t in posted.items() if a in sink.arrived]
    third = max(1, len(backlog) // 3)
    return {
        "rate": rate,
        "posted": total,
        "arrived": len(latencies),
        "p50": percentile(latencies, 0.50) if latencies else float("nan"),
        "p95": percentile(latencies, 0.95) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) if latencies else float("nan"),
        "max": max(latencies, default=float("nan")),
        "ping": statistics.median(pinger.samples) if pinger.samples else float("nan"),
        "ping_max": max(pinger.samples, default=float("nan")),
        "backlog_first": statistics.mean(backlog[:third]) if backlog else 0.0,
        "backlog_last": statistics.mean(backlog[-third:]) if backlog else 0.0,
    }


def cleanup(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE automations_series SET live_version_id = NULL WHERE workspace_id = %s", [workspace.pk])
        for table in (
            "automations_trace", "automations_enrollment", "automations_pendinghook", "automations_seriesversion",
            "automations_series", "campaigns_messageevent", "campaigns_message", "audiences_pendingevents",
            "audiences_event", "audiences_contact",
        ):  # fmt: skip
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
    workspace.delete()
    from esp.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_delete(RUN)


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 200], help="events per second, one phase each")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (make run: 2)")
    parser.add_argument("--upload-interval", type=float, default=0.05, help="the SDK's batching interval")
    options = parser.parse_args()
    from django.core.management import call_command
    from segment.analytics import Client

    call_command("migrate", verbosity=0)
    sink = Sink()
    workspace = Workspace.objects.create(
        name="bench latency", slug=RUN, default_from_name="Bench Shop", default_from_email="shop@bench.example",
        postal_address="1 Bench Street, Springfield", time_zone="Europe/Berlin",
    )  # fmt: skip
    stack = None
    try:
        total = sum(int(rate * options.seconds) for rate in options.rates)
        key = seed(workspace, total, sink.port)
        port = free_port()
        stack = Stack(port, options.concurrency)
        idle = [ping_once() for _ in range(20)]
        print(f"stack up: web :{port}, worker × {options.concurrency}, beat; Celery no-op round trip idle: "
              f"median {statistics.median(idle) * 1000:.0f} ms, max {max(idle) * 1000:.0f} ms")  # fmt: skip
        errors: list[str] = []
        client = Client(
            write_key=key, host=f"http://127.0.0.1:{port}", upload_interval=options.upload_interval,
            upload_size=100, max_queue_size=100_000, on_error=lambda error, _batch: errors.append(str(error)),
        )  # fmt: skip
        first = 1
        for rate in options.rates:
            result = phase(client, sink, rate, options.seconds, first)
            first += int(rate * options.seconds)
            print(
                f"{rate} events/s × {options.seconds:.0f}s: {result['arrived']:,}/{result['posted']:,} in the sink; "
                f"track() → sink p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms, "
                f"p99 {result['p99'] * 1000:.0f} ms, max {result['max'] * 1000:.0f} ms; Celery no-op round trip "
                f"under load median {result['ping'] * 1000:.0f} ms (max {result['ping_max'] * 1000:.0f} ms); "
                f"backlog (posted, not in the sink) first third {result['backlog_first']:.0f}, "
                f"last third {result['backlog_last']:.0f}"
            )
            print(f"  worker tasks so far: {task_summary()}")
        client.shutdown()
        if errors:
            print(f"SDK errors: {len(errors)}, first: {errors[0]}")
        return 0
    finally:
        if stack is not None:
            stack.stop()
        sink.stop()
        cleanup(workspace)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
