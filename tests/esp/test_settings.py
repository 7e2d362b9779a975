"""Settings come from the environment and a bad value stops start-up with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from esp.settings.env import Env, EnvError

ROOT = Path(__file__).resolve().parents[2]


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter, as any process of ours does at start."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "esp.settings.base", **env}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("mysql://user@localhost/esp", "PostgreSQL URL"),
        ("sqlite:///db.sqlite3", "PostgreSQL URL"),
        ("not a url", "PostgreSQL URL"),
        ("postgres://localhost", "names the database"),
    ],
)
def test_bad_database_url_stops_start_up(value: str, words: str) -> None:
    result = _start(DATABASE_URL=value)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr and words in result.stderr


def test_bad_broker_url_stops_start_up() -> None:
    result = _start(CELERY_BROKER_URL="amqp://guest@localhost//")
    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr and "Redis URL" in result.stderr


def test_behind_pgbouncer_django_keeps_no_server_side_cursors() -> None:
    show = "import django; django.setup(); from django.conf import settings as s; "
    show += "print(s.DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS', False))"

    def cursors(**env: str) -> str:
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "esp.settings.base", **env}
        result = subprocess.run(
            [sys.executable, "-c", show], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert cursors(DATABASE_POOLER="pgbouncer") == "True"
    assert cursors(DATABASE_POOLER="") == "False"
    result = _start(DATABASE_POOLER="pgpool")
    assert result.returncode != 0 and "DATABASE_POOLER" in result.stderr and "pgbouncer" in result.stderr


def test_bad_boolean_stops_start_up() -> None:
    result = _start(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe'" in result.stderr


def test_secret_key_is_required_outside_local_runs() -> None:
    result = _start(ESP_LAUNCHER="0", SECRET_KEY="")
    assert result.returncode != 0 and "SECRET_KEY is not set" in result.stderr
    assert _start(ESP_LAUNCHER="0", SECRET_KEY="a-real-secret-from-the-environment").returncode == 0


def test_good_environment_starts() -> None:
    result = _start()
    assert result.returncode == 0, result.stderr


def test_env_parsing() -> None:
    env = Env({"A": "yes", "B": "0", "N": "12", "L": "a, b,,c", "R": "10/min", "BAD_N": "x", "BAD_R": "ten"})
    assert env.boolean("A", False) is True and env.boolean("B", True) is False and env.boolean("MISSING", True) is True
    assert env.integer("N", 0) == 12 and env.strings("L", []) == ["a", "b", "c"] and env.rate("R", "1/s") == "10/min"
    with pytest.raises(EnvError, match="BAD_N"):
        env.integer("BAD_N", 0)
    with pytest.raises(EnvError, match="rate like"):
        env.rate("BAD_R", "1/s")
    with pytest.raises(EnvError, match="at least 13"):
        env.integer("N", 0, minimum=13)


def test_debug_is_off_unless_asked() -> None:
    from django.conf import settings

    assert settings.DEBUG is (os.environ.get("DEBUG", "").lower() in {"1", "true", "yes", "on"})
