"""Redis stopped under a running server (a private redis-server, a real gunicorn and a real
Celery worker): the tracking API and the REST API keep answering, events are stored in
PostgreSQL, /healthz says 503; once Redis is back, the sweep sends the processing the outage
held up and the worker catches up."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

from audiences.models import Event, PendingEvents
from esp.embedded import BASE_DIR
from tests.factories import WorkspaceFactory, api_key

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
pytestmark = pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="redis-server is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Redis:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        _wait(up, 15, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _call(url: str, *, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 — the test's own server
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def stack(transactional_db: None) -> Iterator[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="esp-redis-outage-"))
    redis_port, web_port = _free_port(), _free_port()
    redis = Redis(redis_port, workdir)
    redis.start()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "esp.settings.test",
        "DATABASE_URL": f"postgres://{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@"
        f"{quote(db['HOST'] or '', safe='')}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "CACHE_URL": f"redis://127.0.0.1:{redis_port}/1",
        "SECRET_KEY": "redis-outage-test",
        "LOG_FORMAT": "text",
    }
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "esp.wsgi", "--bind", f"127.0.0.1:{web_port}", "--workers", "1",
         "--threads", "4", "--no-control-socket"],
        cwd=BASE_DIR, env=env,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "esp", "worker", "--pool", "solo", "--without-gossip",
         "--without-mingle", "--loglevel", "WARNING"],
        cwd=BASE_DIR, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{web_port}"

    def web_up() -> bool:
        try:
            return _call(f"{base}/healthz")[0] == 200
        except OSError:
            return False

    try:
        _wait(web_up, 60, "gunicorn")
        yield {"base": base, "redis": redis, "env": env}
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
        for process in (web, worker):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_apis_carry_on_without_redis_and_catch_up_after(stack: dict[str, Any]) -> None:
    base, redis = stack["base"], stack["redis"]
    workspace = WorkspaceFactory(slug="outage")
    rest = {"Authorization": f"Bearer {api_key(workspace)}"}  # type: ignore[arg-type]
    events_key = api_key(workspace, scopes=["events:write"])  # type: ignore[arg-type]
    tracking = {"Authorization": "Basic " + base64.b64encode(f"{events_key}:".encode()).decode()}

    def track(message_id: str) -> int:
        status, _body = _call(
            f"{base}/v1/track",
            body={"userId": "u-1", "event": "Order Completed", "messageId": message_id},
            headers=tracking,
        )
        return status

    assert track("before") == 200
    _wait(lambda: not PendingEvents.objects.exists(), 60, "the worker to process the first event")

    redis.stop()
    assert track("during-1") == 200
    assert track("during-2") == 200
    assert _call(f"{base}/api/v1/me", headers=rest)[0] == 200
    status, contacts = _call(f"{base}/api/v1/contacts", headers=rest)
    assert status == 200 and isinstance(contacts["results"], list)
    assert _call(f"{base}/api/v1/contacts", body={"email": "new@outage.test"}, headers=rest)[0] == 201
    health_status, health = _call(f"{base}/healthz")
    assert health_status == 503 and health["broker"] != "ok" and health["database"] == "ok"
    assert set(Event.objects.filter(workspace=workspace).values_list("message_id", flat=True)) == {
        "before",
        "during-1",
        "during-2",
    }
    assert PendingEvents.objects.count() == 2  # their processing could not be sent

    redis.start()
    _wait(lambda: _call(f"{base}/healthz")[0] == 200, 30, "/healthz to recover")
    # What beat's sweep does once the rows are older than SWEEP_AFTER (two minutes).
    sweep = (
        "import datetime; from django.utils import timezone; from audiences.pipeline import pending_events_sweep; "
        "print(pending_events_sweep(now=timezone.now() + datetime.timedelta(minutes=3)))"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", sweep], cwd=BASE_DIR, env=stack["env"], check=True, timeout=120
    )
    # The worker deletes a row in the transaction that processed its events.
    _wait(lambda: not PendingEvents.objects.exists(), 90, "the worker to catch up")
