"""KillMidSend: at most once under `kill -9`.

20,000 queued messages go to an SMTP sink in another process (bench/smtp_sink.py, which writes
each recipient to a file before it answers 250) through real Celery workers (`celery -A esp
worker`, prefork, concurrency 2) on the test's database and broker. The worker is killed with
SIGKILL — the whole process group, pool children included — three times while it sends; each
time recovery runs (as the beat tick would, with the thresholds at zero since nobody is left
holding rows) and a new worker starts. At the end:

- no address received two copies;
- every message is `sent` or `in_doubt`; every `sent` one arrived exactly once; an `in_doubt`
  one arrived at most once (it was handed over as the worker died);
- at most two rows (the worker's concurrency) became `in_doubt` per kill.

It runs twice: with the workers connected to PostgreSQL directly, and through a PgBouncer in
transaction pooling (tests/pgbouncer.py) with fewer server connections than clients, so that
consecutive transactions of one worker land on different server connections, as they do in
production behind PgBouncer. Takes about a minute each on the 2-core CI machine.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from audiences.models import Contact
from campaigns.delivery import drain
from campaigns.delivery.recovery import messages_recover
from campaigns.delivery.services import messages_enqueue
from campaigns.models import EmailTemplate, Message, MessageClass
from campaigns.providers.services import provider_create
from esp.celery import app
from esp.models import Workspace
from esp.settings.base import EMBEDDED_ENV_FILE
from esp.settings.env import read_env_file
from tests.pgbouncer import PgBouncer, pgbouncer_binary

# Their SMTP sinks and fake ESP APIs listen on loopback.
pytestmark = pytest.mark.usefixtures("local_outbound")

BASE_DIR = Path(__file__).resolve().parents[2]
MESSAGES = 20_000
CONCURRENCY = 2
# Received-count thresholds at which the worker is killed: early, middle, late in the run.
KILL_AT = (2_000, 8_000, 14_000)
DEADLINE_SECONDS = 300

MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hello {{ contact.first_name|default:"there" }}, your code is {{ contact.external_id }}.</mj-text>
<mj-button href="https://shop.example/sale">Sale</mj-button>
</mj-column></mj-section></mj-body></mjml>"""


def test_database_url() -> str:
    """The URL of the test database (pytest-django's), for the worker processes."""
    base = os.environ.get("DATABASE_URL") or read_env_file(EMBEDDED_ENV_FILE)["DATABASE_URL"]
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + str(connection.settings_dict["NAME"])))


test_database_url.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


class Sink:
    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "received.txt"
        self.path.touch()
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "bench" / "smtp_sink.py"), "--out", str(self.path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("READY "), line
        self.port = int(line.split()[1])

    def received(self) -> int:
        with self.path.open("rb") as lines:
            return sum(1 for _ in lines)

    def counts(self) -> Counter[str]:
        return Counter(self.path.read_text().split())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Worker:
    """`celery -A esp worker` in a process group of its own, so kill -9 takes the pool too."""

    def __init__(self, tmp: Path, number: int, database: dict[str, str]) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "esp.settings.test",
            **database,
            "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
            "SECRET_KEY": str(settings.SECRET_KEY),
            "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",  # the SMTP sink listens on loopback
            "SEND_CONCURRENCY": str(CONCURRENCY),
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "text",
        }
        self.log = tmp / f"worker{number}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "esp", "worker", "--pool", "prefork",
            "--concurrency", str(CONCURRENCY), "--queues", str(settings.CELERY_TASK_DEFAULT_QUEUE),
            "--hostname", f"killmidsend{number}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "INFO",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def tick() -> None:
    """What beat does every few seconds: ask for a drain (it exits when the slots are full)."""
    from campaigns.tasks import send_messages

    send_messages.delay()


def diagnose(worker: Worker) -> str:
    client = drain._redis()
    slots = {key: client.get(key) for key in client.scan_iter(f"{drain._prefix()}:*")}
    states = Counter(Message.objects.values_list("state", flat=True))
    return f"slots {slots}; states {dict(states)}; pool {descendants(worker.process.pid)}\n{worker.tail()}"


def descendants(pid: int) -> list[int]:
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return children + [d for child in children for d in descendants(child)]


def outstanding() -> int:
    return Message.objects.filter(state__in=["queued", "claimed", "sending"]).count()


@pytest.fixture
def clean_broker() -> Iterator[None]:
    app.control.purge()
    client = drain._redis()
    for key in client.scan_iter(f"{drain._prefix()}:*"):
        client.delete(key)
    yield
    app.control.purge()


@pytest.fixture(params=["direct", "pgbouncer"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The workers' database settings: the test database, directly or through PgBouncer."""
    if request.param == "direct":
        yield {"DATABASE_URL": test_database_url()}
        return
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is missing: install Debian's pgbouncer package (`make pgbouncer`) to send through it")
    # Two server connections for the worker's three clients (main process and two pool
    # processes): a worker's next transaction often runs on another server connection.
    with PgBouncer(test_database_url(), pool_size=2) as bouncer:
        yield {"DATABASE_URL": bouncer.url, "DATABASE_POOLER": "pgbouncer"}


@pytest.mark.django_db(transaction=True)
def test_kill_9_mid_send_never_doubles_a_message(
    tmp_path: Path, acme: Workspace, clean_broker: None, database: dict[str, str]
) -> None:
    started = time.monotonic()
    sink = Sink(tmp_path)
    workers: list[Worker] = []
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                    city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
                SELECT %s, 'k' || n || '@kill.example', 'code-' || n, 'Kim' || n, '', '', '', '', '', '', '', '{}',
                       '{}', 'test', now(), now()
                FROM generate_series(1, %s) AS n
                """,
                [acme.pk, MESSAGES],
            )
        provider_create(
            workspace=acme,
            name="Sink",
            kind="smtp",
            credentials={"host": "127.0.0.1", "port": sink.port, "use_tls": False, "timeout": 10},
            is_default=True,
        )
        template = EmailTemplate.objects.create(
            workspace=acme, name="Kill", subject="Hi {{ contact.first_name }}", mjml=MJML
        )
        assert (
            messages_enqueue(
                workspace=acme,
                source="broadcast:kill",
                contacts=Contact.objects.filter(workspace=acme),
                template=template,
                message_class=MessageClass.MARKETING,
            )
            == MESSAGES
        )

        in_doubt_after_kill: list[int] = []
        for number, threshold in enumerate(KILL_AT):
            worker = Worker(tmp_path, number, database)
            workers.append(worker)
            next_tick = 0.0
            while sink.received() < threshold:
                assert worker.process.poll() is None, worker.tail()
                if time.monotonic() >= next_tick:
                    tick()
                    next_tick = time.monotonic() + 3
                assert time.monotonic() - started < DEADLINE_SECONDS, f"stuck at {sink.received()}\n{diagnose(worker)}"
                time.sleep(0.05)
            worker.kill()
            # Nobody holds rows now: what is claimed goes back, what was being handed over is in doubt.
            messages_recover(claimed_after=dt.timedelta(0), sending_after=dt.timedelta(0))
            in_doubt_after_kill.append(Message.objects.filter(state="in_doubt").count())

        last = Worker(tmp_path, len(KILL_AT), database)
        workers.append(last)
        next_tick = 0.0
        while outstanding():
            assert last.process.poll() is None, last.tail()
            assert time.monotonic() - started < DEADLINE_SECONDS, f"{outstanding()} left\n{diagnose(last)}"
            if time.monotonic() >= next_tick:
                tick()
                next_tick = time.monotonic() + 3
            time.sleep(0.2)
        last.stop()

        counts = sink.counts()
        rows = dict(Message.objects.filter(workspace=acme).values_list("to_email", "state"))
        states = Counter(rows.values())
        in_doubt = [address for address, state in rows.items() if state == "in_doubt"]
        # Every kill hit a worker that was sending; each leaves at most one row per pool process.
        per_kill = [in_doubt_after_kill[0]] + [b - a for a, b in itertools.pairwise(in_doubt_after_kill)]
        assert all(n <= CONCURRENCY for n in per_kill), per_kill
        assert states["in_doubt"] <= CONCURRENCY * len(KILL_AT)
        assert set(states) <= {"sent", "in_doubt"}, states
        assert states["sent"] + states["in_doubt"] == MESSAGES
        doubled = {address: n for address, n in counts.items() if n > 1}
        assert doubled == {}
        assert set(counts) <= set(rows)
        assert all(counts[address] == 1 for address, state in rows.items() if state == "sent")
        assert all(counts[address] <= 1 for address in in_doubt)
        assert sum(counts.values()) >= MESSAGES - len(in_doubt)
    finally:
        for worker in workers:
            worker.stop()
        sink.stop()
