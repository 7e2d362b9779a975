"""Shared fixtures. Two workspaces, `acme` and `globex`, each with an owner, so every test can
check that nothing of one shows in the other. Tests run on a real PostgreSQL and Redis."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from esp.models import Role, User, Workspace
from tests.factories import WorkspaceFactory, api_key, member


@pytest.fixture(autouse=True)
def _default_language() -> None:
    # A request by a user with a chosen language leaves that language active in the thread;
    # a later test that calls a view or serializer directly must not inherit it.
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    # Throttle counters live in Redis and would leak between tests.
    cache.clear()


@pytest.fixture
def acme(db: None) -> Workspace:
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def globex(db: None) -> Workspace:
    return WorkspaceFactory(name="Globex", slug="globex")


@pytest.fixture
def acme_owner(acme: Workspace) -> User:
    return member(acme, Role.OWNER, email="owner@acme.test")


@pytest.fixture
def globex_owner(globex: Workspace) -> User:
    return member(globex, Role.OWNER, email="owner@globex.test")


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def acme_client(acme_owner: User) -> Client:
    return logged_in(acme_owner)


def key_client(secret: str, *, basic: bool = False) -> APIClient:
    client = APIClient()
    if basic:
        token = base64.b64encode(f"{secret}:".encode()).decode()
        client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def acme_api(acme: Workspace) -> APIClient:
    return key_client(api_key(acme))


@pytest.fixture
def run_tasks_now(settings: object) -> None:
    """Run Celery tasks inline when enqueued. Only for tests of flows that enqueue work; the
    broker path itself is tested with a real worker in tests/esp/test_celery.py."""
    from esp.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _mail_to_the_outbox(settings: object) -> None:
    # Django's test set-up swaps in its in-memory mail backend; the project's own outbox is
    # what users see, so the tests use that.
    settings.EMAIL_BACKEND = "esp.mail.OutboxBackend"  # type: ignore[attr-defined]


@pytest.fixture
def local_outbound(settings: object) -> None:
    """Lets providers reach the tests' SMTP sinks and fake ESP APIs on 127.0.0.1, which the
    outbound guard refuses for tenants unless the operator allows the host."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # type: ignore[attr-defined]


@pytest.fixture
def clock() -> Iterator[Any]:
    """The engine's clock, frozen at the real now: `clock.advance(hours=4)` moves it."""
    from esp import clock as engine_clock

    engine_clock.freeze()
    yield engine_clock
    engine_clock.thaw()
