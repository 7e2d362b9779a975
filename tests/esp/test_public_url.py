"""Outside a local run, a plain-http PUBLIC_BASE_URL stops web, worker and beat unless the
operator allows it (ALLOW_HTTP_PUBLIC_URL); local runs log it, and the settings page warns."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from esp.checks import check_public_url, refuse_to_start_without_https

BASE_DIR = Path(__file__).resolve().parent.parent.parent


@override_settings(PUBLIC_BASE_URL="http://mail.shop.example", LOCAL_RUN=False, ALLOW_HTTP_PUBLIC_URL=False)
def test_plain_http_outside_a_local_run_is_an_error() -> None:
    errors = check_public_url()
    assert [error.id for error in errors] == ["esp.E001"]
    assert "ALLOW_HTTP_PUBLIC_URL" in errors[0].msg
    with pytest.raises(ImproperlyConfigured, match="not https"):
        refuse_to_start_without_https()


@pytest.mark.parametrize(
    "overrides",
    [
        {"PUBLIC_BASE_URL": "https://mail.shop.example", "LOCAL_RUN": False, "ALLOW_HTTP_PUBLIC_URL": False},
        {"PUBLIC_BASE_URL": "http://localhost:8000", "LOCAL_RUN": False, "ALLOW_HTTP_PUBLIC_URL": True},
        {"PUBLIC_BASE_URL": "http://127.0.0.1:8000", "LOCAL_RUN": True, "ALLOW_HTTP_PUBLIC_URL": False},
    ],
)
def test_https_an_explicit_allowance_or_a_local_run_start(overrides: dict[str, object]) -> None:
    with override_settings(**overrides):
        assert check_public_url() == []
        refuse_to_start_without_https()


@override_settings(PUBLIC_BASE_URL="http://127.0.0.1:8000", LOCAL_RUN=True)
def test_a_local_run_says_so_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="esp.checks"):
        refuse_to_start_without_https()
    assert "plain http" in caplog.text


def test_the_processes_refuse_to_start() -> None:
    """`manage.py check` (which `migrate` runs first in docker-compose) and the WSGI module
    gunicorn loads both stop, naming the setting."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"ESP_LAUNCHER", "ALLOW_HTTP_PUBLIC_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DATABASE_URL="postgres://nobody@127.0.0.1:1/none",
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",
        SECRET_KEY="test-only-secret",
        PUBLIC_BASE_URL="http://mail.shop.example",
    )
    check = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode != 0 and "esp.E001" in check.stderr
    wsgi = subprocess.run(
        [sys.executable, "-c", "import esp.wsgi"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert wsgi.returncode != 0 and "ALLOW_HTTP_PUBLIC_URL" in wsgi.stderr
    allowed = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env={**env, "ALLOW_HTTP_PUBLIC_URL": "true"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.django_db
def test_the_settings_page_warns_about_plain_http(acme_client: Client, settings: object) -> None:
    settings.PUBLIC_BASE_URL = "http://mail.shop.example"  # type: ignore[attr-defined]
    page = acme_client.get("/settings/workspace/").content.decode()
    assert 'id="plain-http-warning"' in page and "http://mail.shop.example" in page
    settings.PUBLIC_BASE_URL = "https://mail.shop.example"  # type: ignore[attr-defined]
    assert 'id="plain-http-warning"' not in acme_client.get("/settings/workspace/").content.decode()


def test_docker_compose_allows_plain_http_on_purpose() -> None:
    compose = (BASE_DIR / "docker-compose.yml").read_text()
    assert 'ALLOW_HTTP_PUBLIC_URL: "true"' in compose and "OUTBOUND_ALLOWED_HOSTS: mailpit" in compose
