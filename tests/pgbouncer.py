"""A PgBouncer in transaction pooling in front of a database, for tests and benchmarks.

Production runs PostgreSQL behind PgBouncer with `pool_mode = transaction` (DESIGN rule 12):
each transaction may run on another server connection, so nothing may rely on session state
(SQL PREPARE, session advisory locks, SET, temporary tables across transactions, WITH HOLD
cursors). This starts Debian's `pgbouncer` (installed by `make pgbouncer`) on a free loopback
port with a config written to a temporary directory, and gives the URL that goes through it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_binary() -> str | None:
    for candidate in CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("pgbouncer")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quote(value: str) -> str:
    # libpq connection-string value, as PgBouncer's [databases] lines take them.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class PgBouncer:
    """`with PgBouncer(database_url) as bouncer: bouncer.url` — the same database, through a
    PgBouncer in transaction pooling (any client user is let in: auth_type = trust; PgBouncer
    logs in to the server with the URL's user and password)."""

    def __init__(self, database_url: str, *, pool_size: int = 8) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise FileNotFoundError("pgbouncer is not installed (Debian's pgbouncer package: `make pgbouncer`)")
        self.binary = binary
        self.target = urlsplit(database_url)
        self.pool_size = pool_size
        self.dir = Path(tempfile.mkdtemp(prefix="esp-pgbouncer-"))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The database URL through PgBouncer (same user, password and database name)."""
        netloc = self.target.netloc.rsplit("@", 1)[0] + "@" if "@" in self.target.netloc else ""
        return urlunsplit(self.target._replace(netloc=f"{netloc}127.0.0.1:{self.port}"))

    def config(self) -> str:
        target = self.target
        server = [f"host={_quote(target.hostname or '127.0.0.1')}", f"port={target.port or 5432}"]
        if target.username:
            server.append(f"user={_quote(unquote(target.username))}")
        if target.password:
            server.append(f"password={_quote(unquote(target.password))}")
        user = unquote(target.username or "postgres")
        (self.dir / "users.txt").write_text(f'"{user}" ""\n')
        return "\n".join(
            [
                "[databases]",
                "* = " + " ".join(server),
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {self.dir / 'users.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {self.pool_size}",
                # Hand out server connections in turn rather than the last used first: a
                # client's consecutive transactions land on different ones, as on a busy pool.
                "server_round_robin = 1",
                # Close each server connection a second after it opened, once it is released:
                # state left on one (a PREPAREd statement, a session lock) is soon gone, and
                # new connections without it keep coming, as after PgBouncer's recycling.
                "server_lifetime = 1",
                "max_client_conn = 200",
                # What a transaction-mode pool does between clients: nothing may rely on it.
                "server_reset_query =",
                f"logfile = {self.dir / 'pgbouncer.log'}",
                f"pidfile = {self.dir / 'pgbouncer.pid'}",
                "",
            ]
        )

    def start(self) -> PgBouncer:
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(self.config())
        command = [self.binary, "--quiet", str(ini)]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root: it drops to an unprivileged user, which must
            # read its config and write its log and pid file.
            nobody = pwd.getpwnam("nobody")
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            command[1:1] = ["--user", "nobody"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start:\n{self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
