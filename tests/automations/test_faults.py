"""The series engine under faults: a tick delivered twice, three schedulers at once, an event
whose transaction rolls back, `kill -9` in the middle of a tick, a replayed event, a hook
handled twice, and a broker that is down.

The faults that need processes get real ones: `celery -A esp worker` (prefork) and plain
Python processes calling the beat's tick, all on the test's database and broker. Their send
drain is parked on a queue nobody takes (the send road is tested on its own; here every
Message row is what counts: one per enrollment and step, whatever happened).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection, transaction
from kombu.exceptions import OperationalError

from audiences import hooks
from audiences.models import Contact, MailingList
from automations.engine.enroll import candidates_from_contacts, enrollments_insert
from automations.engine.inbox import SWEEP_AFTER, pending_hook_add, pending_hook_handle
from automations.models import Enrollment, EnrollmentState, PendingHook, ReEntry, Series, Trace, TraceOutcome
from automations.tasks import hook_arrived, run_due_enrollments
from campaigns.models import EmailTemplate, Message
from esp import clock as engine_clock
from esp.celery import app
from esp.models import Workspace
from esp.settings.base import EMBEDDED_ENV_FILE
from esp.settings.env import read_env_file
from tests.automations.series_helpers import contact, live_series
from tests.factories import EventFactory, api_key

BASE_DIR = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 240


# --- helpers ---------------------------------------------------------------------------------


def drip(workspace: Workspace, templates: dict[str, EmailTemplate], **settings_: Any) -> Series:
    """Mail now, wait a day, mail again: a tick runs the first send and parks everyone on the wait."""
    return live_series(
        workspace,
        [
            {"key": "hello", "type": "send", "template": templates["welcome"].pk, "next": "later"},
            {"key": "later", "type": "wait", "amount": 1, "unit": "days", "next": "coupon"},
            {"key": "coupon", "type": "send", "template": templates["coupon"].pk},
        ],
        **settings_,
    )


def bulk_contacts(workspace: Workspace, count: int, prefix: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
            SELECT %s, %s || n || '@faults.example', '', 'F' || n, '', '', '', '', '', '', '', '{}', '{}', 'test',
                   now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [workspace.pk, prefix, count],
        )


def enroll_all(series: Series, prefix: str) -> int:
    """Everyone whose address starts with `prefix` enters now, due at once (the engine's insert)."""
    series.refresh_from_db()
    contacts = Contact.objects.filter(workspace_id=series.workspace_id, email__startswith=prefix)
    sql, params = candidates_from_contacts(contacts)
    return len(enrollments_insert(series, sql, params, engine_clock.now()))


def assert_each_step_ran_once(series: Series, expected: int) -> None:
    """One Message per enrollment and send step, one trace per step run, and everyone ran."""
    sources = Counter(Message.objects.filter(workspace_id=series.workspace_id).values_list("source", flat=True))
    assert [s for s, n in sources.items() if n > 1] == []
    mine = [s for s in sources if s.startswith("step:")]
    enrollments = set(Enrollment.objects.filter(series=series).values_list("pk", flat=True))
    assert len(enrollments) == expected
    assert {int(s.split(":")[1]) for s in mine if s.endswith(":hello")} >= enrollments
    runs = Counter(Trace.objects.filter(series=series).values_list("enrollment_id", "step_key", "outcome"))
    assert [run for run, n in runs.items() if n > 1] == []
    sent = Counter(step for (_e, step, outcome) in runs if outcome == TraceOutcome.SENT)
    assert sent == {"hello": expected}
    waiting = Enrollment.objects.filter(series=series, step_key="later", state=EnrollmentState.WAITING).count()
    assert waiting == expected


def test_database_url() -> str:
    """The test database's URL (pytest-django's), for the processes the test starts."""
    base = os.environ.get("DATABASE_URL") or read_env_file(EMBEDDED_ENV_FILE)["DATABASE_URL"]
    return urlunsplit(urlsplit(base)._replace(path="/" + str(connection.settings_dict["NAME"])))


test_database_url.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


class Processes:
    """Workers and tick processes of one test, on a queue of its own, with the send drain parked."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.parked = f"{self.queue}-send"
        (tmp / "faults_settings.py").write_text(
            "from esp.settings.test import *  # noqa\n"
            f"CELERY_TASK_DEFAULT_QUEUE = {self.queue!r}\n"
            f"CELERY_TASK_ROUTES = {{'campaigns.send_messages': {{'queue': {self.parked!r}}}}}\n"
        )
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "faults_settings",
            "PYTHONPATH": os.pathsep.join([str(tmp), str(BASE_DIR)]),
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
            "SECRET_KEY": str(settings.SECRET_KEY),
            "LOG_LEVEL": "INFO",
            "LOG_LEVEL_CELERY": "INFO",
            "LOG_FORMAT": "text",
        }
        self.started: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def _start(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            # A session of its own: kill -9 of the group takes the pool processes too.
            process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append(process)
        self.logs.append(log)
        return process

    def worker(self, name: str, concurrency: int = 2) -> subprocess.Popen[bytes]:
        process = self._start(
            [
                sys.executable, "-m", "celery", "-A", "esp", "worker", "--pool", "prefork",
                "--concurrency", str(concurrency), "--queues", self.queue, "--hostname", f"{name}-{self.queue}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
            ],
            name,
        )  # fmt: skip
        wait_for(lambda: b" ready." in (self.tmp / f"{name}.log").read_bytes(), 60, f"{name} to start", self)
        return process

    def ticker(self, name: str, go: Path, ticks: int) -> subprocess.Popen[bytes]:
        """A process that, like a beat of its own, calls the tick `ticks` times once `go` exists."""
        code = (
            "import os, time, pathlib, django\n"
            "django.setup()\n"
            "from automations.tasks import run_due_enrollments\n"
            f"go = pathlib.Path({str(go)!r})\n"
            "while not go.exists(): time.sleep(0.005)\n"
            f"print('ran', [run_due_enrollments() for _ in range({ticks})], flush=True)\n"
        )
        return self._start([sys.executable, "-c", code], name)

    def tick(self, task_id: str | None = None) -> None:
        run_due_enrollments.apply_async(queue=self.queue, task_id=task_id)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in self.logs)

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        with app.connection_for_write() as broker:
            for queue in (self.queue, self.parked):
                broker.default_channel.queue_delete(queue)


def wait_for(condition: Callable[[], bool], seconds: float, what: str, processes: Processes) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{processes.tails()}"
        time.sleep(0.05)


def due_left(series: Series) -> int:
    return Enrollment.objects.filter(series=series, ended_at__isnull=True, due_at__lte=engine_clock.now()).count()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop()


# --- faults with real processes ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_visibility_timeout_redelivery_runs_every_step_once(
    acme: Workspace, templates: dict[str, EmailTemplate], processes: Processes
) -> None:
    """The same tick task (one task id) delivered twice, the second while the first runs (as
    Redis re-delivers an unacknowledged task after its visibility timeout): the two share the
    due enrollments through SKIP LOCKED, and no step runs twice."""
    series = drip(acme, templates)
    bulk_contacts(acme, 5_000, "vt")
    assert enroll_all(series, "vt") == 5_000
    task_id = str(uuid.uuid4())
    processes.tick(task_id)
    processes.tick(task_id)  # the redelivery: both are in the queue when the worker starts
    processes.worker("redelivery", concurrency=2)
    wait_for(lambda: processes.log("redelivery").count("succeeded in") >= 2, DEADLINE_SECONDS, "both", processes)
    ran = [
        int(line.rsplit(":", 1)[1])
        for line in processes.log("redelivery").splitlines()
        if task_id in line and "succeeded in" in line
    ]
    # Both deliveries ran at once and split the work; none ran an enrollment the other ran.
    assert len(ran) == 2 and all(n > 0 for n in ran) and sum(ran) == 5_000, ran
    assert_each_step_ran_once(series, 5_000)


@pytest.mark.django_db(transaction=True)
def test_duplicate_scheduler_three_tickers_run_every_due_step_once(
    acme: Workspace, templates: dict[str, EmailTemplate], processes: Processes, tmp_path: Path
) -> None:
    """Three beat-like processes tick at the same moment, three times each: a promo that starts
    now enters its list once, and every due step of two series runs once."""
    series = drip(acme, templates)
    bulk_contacts(acme, 3_000, "ds")
    assert enroll_all(series, "ds") == 3_000
    promo_list = MailingList.objects.create(workspace=acme, name="Promo")
    bulk_contacts(acme, 2_000, "promo")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audiences_subscription (workspace_id, contact_id, mailing_list_id, status, created_at,
                updated_at, confirmed_at)
            SELECT c.workspace_id, c.id, %s, 'subscribed', now(), now(), now()
            FROM audiences_contact c WHERE c.workspace_id = %s AND c.email LIKE 'promo%%'
            """,
            [promo_list.pk, acme.pk],
        )
    at = (engine_clock.now() - dt.timedelta(minutes=1)).isoformat()
    promo = drip(
        acme, templates, name="Promo", kind="promo", trigger={"type": "promo", "list": promo_list.pk, "at": at}
    )
    go = tmp_path / "go"
    tickers = [processes.ticker(f"ticker{n}", go, ticks=3) for n in range(3)]
    time.sleep(3)  # all three import Django and wait at the line
    go.touch()
    for process in tickers:
        try:
            process.wait(DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(processes.tails())
        assert process.returncode == 0, processes.tails()
    assert_each_step_ran_once(series, 3_000)
    assert_each_step_ran_once(promo, 2_000)
    entered = Counter(Trace.objects.filter(series=promo, outcome=TraceOutcome.ENTERED).values_list("enrollment_id"))
    assert len(entered) == 2_000 and set(entered.values()) == {1}


@pytest.mark.django_db(transaction=True)
def test_kill_9_mid_tick_then_restart_runs_every_other_step_once(
    acme: Workspace, templates: dict[str, EmailTemplate], processes: Processes
) -> None:
    """`kill -9` of the worker (its whole process group) while 10,000 due steps run: the batch in
    flight rolls back with its Messages and traces; after a restart nothing is doubled and every
    step runs."""
    series = drip(acme, templates)
    bulk_contacts(acme, 10_000, "kill")
    assert enroll_all(series, "kill") == 10_000
    victim = processes.worker("victim", concurrency=2)
    processes.tick()
    processes.tick()
    made = Message.objects.filter(workspace=acme)
    wait_for(lambda: made.count() >= 1_500, DEADLINE_SECONDS, "the first batches", processes)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    before = made.count()
    assert before < 10_000, "the tick finished before the kill: nothing was cut short"

    processes.worker("restarted", concurrency=2)
    next_tick = 0.0
    started = time.monotonic()
    while due_left(series):
        assert time.monotonic() - started < DEADLINE_SECONDS, f"{due_left(series)} left\n{processes.tails()}"
        if time.monotonic() >= next_tick:
            processes.tick()
            next_tick = time.monotonic() + 2
        time.sleep(0.1)
    assert_each_step_ran_once(series, 10_000)
    assert made.count() == 10_000 > before


# --- faults in one process --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_on_commit_race_an_event_rolled_back_enrolls_no_one(
    acme: Workspace, templates: dict[str, EmailTemplate], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook fires inside the transaction that stores the event; it is heard only after that
    transaction commits: rolled back, nothing is written down, nothing is sent, no one enters."""
    drip(acme, templates)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(hook_arrived, "apply_async", lambda args, **kw: sent.append(tuple(args)))
    ann = contact(acme, "ann@example.com")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        event = EventFactory(contact=ann, workspace=acme, name="Signed Up", occurred_at=engine_clock.now())
        hooks.events_stored.fire(hooks.EventsStored(acme.pk, (event.pk,), (ann.pk,)))
        assert sent == [] and not PendingHook.objects.exists()  # not before commit
        raise Rollback
    assert sent == [] and not PendingHook.objects.exists()
    run_due_enrollments()
    assert not Enrollment.objects.exists() and not Message.objects.exists()

    # The same, committed: heard once, written down, and handled by its task.
    with transaction.atomic():
        event = EventFactory(contact=ann, workspace=acme, name="Signed Up", occurred_at=engine_clock.now())
        hooks.events_stored.fire(hooks.EventsStored(acme.pk, (event.pk,), (ann.pk,)))
        assert sent == []
    assert len(sent) == 1
    hook_arrived(*sent[0])
    assert Enrollment.objects.get().contact == ann
    assert Message.objects.get().source.endswith(":hello")
    assert not PendingHook.objects.exists()


@pytest.mark.django_db
def test_replayed_event_through_the_tracking_api_enrolls_once(
    acme: Workspace,
    templates: dict[str, EmailTemplate],
    run_tasks_now: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """The shop's SDK retries a `track` (same messageId): the event is stored once, so its
    series sees it once: one enrollment, one email."""
    from django.test import Client

    drip(acme, templates, re_entry=ReEntry.ALWAYS)
    key = api_key(acme, scopes=["events:write"])
    contact(acme, "ann@example.com", external_id="u-1")
    body = {"type": "track", "userId": "u-1", "event": "Signed Up", "messageId": "m-1", "properties": {}}
    for _attempt in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = Client().post(
                "/v1/track", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
            )
        assert response.status_code == 200, response.content
    assert Enrollment.objects.count() == 1
    assert Message.objects.filter(source__endswith=":hello").count() == 1


@pytest.mark.django_db
def test_a_hook_handled_twice_after_its_enrollment_ended_enrolls_once(
    acme: Workspace, templates: dict[str, EmailTemplate]
) -> None:
    """A hook handled again (its task re-delivered after the first run finished, or the tick
    sweeping a row whose task came late) brings the same event a second time. With re-entry
    "every time" and the first enrollment already over, the event must not start another."""
    live_series(
        acme,
        [{"key": "hello", "type": "send", "template": templates["welcome"].pk}],
        re_entry=ReEntry.ALWAYS,
    )
    ann = contact(acme, "ann@example.com")
    event = EventFactory(contact=ann, workspace=acme, name="Signed Up", occurred_at=engine_clock.now())
    for _delivery in range(2):
        pending = pending_hook_add(workspace_id=acme.pk, kind="events", payload={"event_ids": [event.pk]})
        pending_hook_handle(pending_id=pending)
        run_due_enrollments()
    assert Enrollment.objects.get().state == EnrollmentState.COMPLETED
    assert Message.objects.count() == 1
    # A new event of the same name is a new entry: "every time" still means every time.
    again = EventFactory(contact=ann, workspace=acme, name="Signed Up", occurred_at=engine_clock.now())
    pending_hook_handle(
        pending_id=pending_hook_add(workspace_id=acme.pk, kind="events", payload={"event_ids": [again.pk]})
    )
    run_due_enrollments()
    assert Enrollment.objects.count() == 2 and Message.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_broker_outage_loses_nothing_the_tick_handles_it_later(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker is down when the events are heard: the tasks cannot be sent, the rows wait.
    The beat's tick (once the broker is back) handles them after SWEEP_AFTER, not before."""
    drip(acme, templates)

    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(hook_arrived, "apply_async", down)
    people = [contact(acme, f"p{n}@example.com") for n in range(3)]
    with transaction.atomic():
        stored = [EventFactory(contact=p, workspace=acme, name="Signed Up", occurred_at=clock.now()).pk for p in people]
        hooks.events_stored.fire(hooks.EventsStored(acme.pk, tuple(stored), tuple(p.pk for p in people)))
    pending = PendingHook.objects.get()
    assert not Enrollment.objects.exists()

    run_due_enrollments()  # its task may still come: the tick leaves a fresh row alone
    assert not Enrollment.objects.exists()
    clock.advance(SWEEP_AFTER)
    run_due_enrollments()
    assert not PendingHook.objects.exists()
    assert Enrollment.objects.count() == 3
    assert Message.objects.filter(source__endswith=":hello").count() == 3
    # The late task (the broker kept it after all) finds nothing left to do.
    assert hook_arrived.run(pending.pk) == 0
    assert Message.objects.count() == 3


@pytest.mark.django_db
def test_a_hook_that_fails_is_tried_again_later(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler error (a bug, a lost database connection) keeps the row and backs it off; once
    the cause is gone the tick handles it."""
    from automations.engine import inbox

    drip(acme, templates)
    ann = contact(acme, "ann@example.com")
    event = EventFactory(contact=ann, workspace=acme, name="Signed Up", occurred_at=clock.now())
    pending = pending_hook_add(workspace_id=acme.pk, kind="events", payload={"event_ids": [event.pk]})

    def broken(workspace_id: int, payload: dict[str, Any]) -> list[int]:
        raise RuntimeError("database went away")

    monkeypatch.setitem(inbox.HANDLERS, "events", broken)
    clock.advance(SWEEP_AFTER)
    run_due_enrollments()
    row = PendingHook.objects.get(pk=pending)
    assert row.attempts == 1 and row.due_at > clock.now()
    monkeypatch.undo()
    clock.advance(inbox.RETRY_AFTER)
    run_due_enrollments()
    assert not PendingHook.objects.exists()
    assert Enrollment.objects.get().contact == ann


@pytest.mark.django_db
def test_a_task_handles_the_event_rows_waiting_behind_it(
    acme: Workspace, globex: Workspace, templates: dict[str, EmailTemplate]
) -> None:
    """Under load the events of many requests wait in the queue: the first task takes its
    workspace's waiting rows with it, and their own tasks find nothing left."""
    drip(acme, templates)
    people = [contact(acme, f"q{n}@example.com") for n in range(3)]
    rows = [
        pending_hook_add(
            workspace_id=acme.pk,
            kind="events",
            payload={"event_ids": [EventFactory(contact=p, workspace=acme, name="Signed Up").pk]},
        )
        for p in people
    ]
    other = pending_hook_add(workspace_id=globex.pk, kind="events", payload={"event_ids": []})
    assert len(pending_hook_handle(pending_id=rows[0])) == 3
    assert Enrollment.objects.filter(series__workspace=acme).count() == 3
    assert [pending_hook_handle(pending_id=pending) for pending in rows[1:]] == [[], []]
    assert list(PendingHook.objects.values_list("pk", flat=True)) == [other]
