"""The KPI digest: one message per member and period through the send road (transactional,
no contact made), never two for one week, settings per member."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from analytics.digest import digest_period, digest_settings_save, digests_send_due
from analytics.journey_models import DigestSent
from audiences.models import Contact
from campaigns.models import Message
from esp.models import Role, User, Workspace
from tests.conftest import logged_in
from tests.factories import member


def test_the_period_of_a_digest() -> None:
    monday = dt.date(2026, 3, 9)
    assert digest_period("weekly", monday) == (dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    assert digest_period("weekly", monday + dt.timedelta(days=3)) == (dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    assert digest_period("daily", monday) == (dt.date(2026, 3, 8), dt.date(2026, 3, 8))
    assert digest_period("off", monday) is None


@pytest.mark.django_db
def test_one_digest_per_week_however_often_the_beat_runs(acme: Workspace, acme_owner: User) -> None:
    digest_settings_save(workspace=acme, user=acme_owner, frequency="weekly")
    monday = dt.datetime(2026, 3, 9, 8, tzinfo=dt.UTC)
    assert digests_send_due(now=monday) == 1
    assert digests_send_due(now=monday + dt.timedelta(hours=1)) == 0
    assert digests_send_due(now=monday + dt.timedelta(days=2)) == 0
    assert digests_send_due(now=monday + dt.timedelta(days=7)) == 1
    messages = Message.objects.filter(workspace=acme, to_email=acme_owner.email)
    assert messages.count() == 2 and all(m.source.startswith("tx:digest:") for m in messages)
    assert DigestSent.objects.filter(workspace=acme).count() == 2
    assert not Contact.objects.filter(workspace=acme, email=acme_owner.email).exists()
    first = messages.order_by("id").first()
    assert first is not None and first.data["event"]["figures"][0]["label"] == "Sent"


@pytest.mark.django_db
def test_members_set_their_own_digest_owners_anyones(acme: Workspace, acme_owner: User) -> None:
    viewer = member(acme, Role.VIEWER)
    client: Client = logged_in(viewer)
    own = viewer.memberships.get(workspace=acme)
    owners = acme_owner.memberships.get(workspace=acme)
    assert client.post("/reports/digest/", {"member": own.pk, f"m{own.pk}-frequency": "daily"}).status_code == 302
    assert client.post("/reports/digest/", {"member": owners.pk, f"m{owners.pk}-frequency": "daily"}).status_code == 403
    assert client.post("/reports/digest/", {"member": own.pk, f"m{own.pk}-frequency": "hourly"}).status_code == 400
    assert client.post("/reports/digest/", {"member": "x"}).status_code == 404
