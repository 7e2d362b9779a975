"""The Overview speaks to a marketer: audience size and growth, segments, the last sends with
their open and click rates, what to do next; its figures come from bounded, indexed reads, and
the developer's hints are on the API keys page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audiences.models import Contact, Segment
from audiences.services import contact_save
from campaigns.models import Message
from esp.models import User, Workspace
from tests.conftest import logged_in
from tests.factories import EmailTemplateFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_overview_loads_the_marketers_sections_and_no_developer_hints(acme_client: Client) -> None:
    page = acme_client.get("/").content.decode()
    main = page[page.index("<main") : page.index("</main>")]
    assert 'hx-get="/audience/overview/"' in main and 'hx-get="/messages/recent/"' in main
    assert "curl" not in main and "Authorization" not in main and "active API key" not in main
    assert "curl -H" in acme_client.get("/settings/api-keys/").content.decode()


def test_audience_section_counts_size_growth_and_segments(
    acme: Workspace, globex: Workspace, acme_client: Client
) -> None:
    now = timezone.now()
    for n, age in enumerate([1, 5, 20, 40, 45, 90]):
        contact = contact_save(workspace=acme, data={"email": f"c{n}@example.com"})[0]
        Contact.objects.filter(pk=contact.pk).update(created_at=now - timedelta(days=age))
    contact_save(workspace=globex, data={"email": "globex@example.com"})
    Segment.objects.create(workspace=acme, name="Big spenders", rules={}, member_count=4)
    Segment.objects.create(workspace=globex, name="Globex only", rules={}, member_count=9)

    with CaptureQueriesContext(connection) as queries:
        page = acme_client.get("/audience/overview/").content.decode()
    assert re.search(r"<strong>6</strong>\s*contacts", page)
    assert "<strong>+3</strong>" in page and "2 in the 30 days before" in page
    assert "Big spenders" in page and "Globex only" not in page
    contact_scan = next(q["sql"] for q in queries.captured_queries if "FROM audiences_contact" in q["sql"])
    assert "LIMIT 100001" in contact_scan


def test_last_sends_show_rates_per_email_over_a_bounded_window(
    acme: Workspace, globex: Workspace, acme_owner: User
) -> None:
    welcome = EmailTemplateFactory(workspace=acme, name="Welcome")
    promo = EmailTemplateFactory(workspace=acme, name="Spring promo")
    ana = contact_save(workspace=acme, data={"email": "ana@example.com"})[0]
    now = timezone.now()
    for n in range(4):
        MessageFactory(contact=ana, template=welcome, source=f"welcome:{n}", opened_at=now if n < 2 else None)
    for n in range(10):
        MessageFactory(
            contact=ana, template=promo, source=f"broadcast:{n}", opened_at=now if n < 5 else None,
            clicked_at=now if n < 1 else None,
        )  # fmt: skip
    MessageFactory(contact=ana, template=promo, source="test:1", opened_at=now)  # a test send: left out
    MessageFactory(contact=ana, template=promo, source="broadcast:q", state="queued", sent_at=None)
    globex_mail = EmailTemplateFactory(workspace=globex, name="Globex mail")
    MessageFactory(workspace=globex, template=globex_mail, to_email="x@example.com")

    with CaptureQueriesContext(connection) as queries:
        page = logged_in(acme_owner).get("/messages/recent/").content.decode()
    rows = re.findall(
        r"<tr>\s*<td><a [^>]*>([^<]+)</a>.*?</td>\s*<td>(\d+)</td>\s*<td>(\d+) %</td>\s*<td>(\d+) %</td>", page, re.S
    )
    assert rows == [("Spring promo", "10", "50", "10"), ("Welcome", "4", "50", "0")]
    assert "Globex mail" not in page
    scan = next(q["sql"] for q in queries.captured_queries if "FROM campaigns_message" in q["sql"])
    assert "ORDER BY id DESC LIMIT 5000" in scan
    assert Message.objects.filter(workspace=acme).count() == 16
