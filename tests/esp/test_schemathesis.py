"""Schemathesis fuzzes every operation of the OpenAPI document (/api/schema/) through the WSGI
app, as a tenant would call it: with an API key of a second workspace, next to a first one
with data of its own. Every check runs: no 5xx, every status, header and body as documented,
and requests the document calls invalid are refused. Bounded for CI: ten examples an
operation, derandomized so a failure reproduces. schemathesis.toml says why a 400 naming a field
also answers data the document calls valid.

Run alone:  .venv/bin/python -m esp.embedded test tests/esp/test_schemathesis.py -q
More examples:  SCHEMATHESIS_EXAMPLES=200 (same command)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from esp.models import Workspace  # noqa: E402
from esp.wsgi import application  # noqa: E402
from tests.factories import api_key  # noqa: E402

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    # As Django's test client does: requests must not close the test's connection (and with
    # it the transaction each test runs in).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def globex_headers(acme: Workspace, globex: Workspace) -> dict[str, str]:
    from audiences.models import Contact, MailingList

    # Data of the first workspace that nothing done with the second's key may reach.
    MailingList.objects.create(workspace=acme, name="Acme list")
    Contact.objects.create(workspace=acme, email="someone@acme.test")
    return {"Authorization": f"Bearer {api_key(globex)}"}


schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_the_api_keeps_to_its_openapi_document(case: Any, globex_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=globex_headers)
