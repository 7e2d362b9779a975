"""Money is shown in the workspace's currency and formatted by the reader's language."""

from __future__ import annotations

import html
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from audiences.facts import purchase_facts_refresh
from audiences.services import contact_save
from esp.models import User, Workspace
from esp.money import NBSP, format_money
from tests.factories import order_event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "currency", "language", "shown"),
    [
        (Decimal("1234.5"), "EUR", "en", "€1,234.50"),
        (Decimal("1234.5"), "EUR", "ru", f"1{NBSP}234,50{NBSP}€"),
        (163.4, "USD", "en", "$163.40"),
        ("-19", "GBP", "en", "-£19.00"),
        (Decimal("99.9"), "CHF", "en", f"CHF{NBSP}99.90"),
        (Decimal("2500"), "RUB", "ru", f"2{NBSP}500,00{NBSP}₽"),
    ],
)
def test_format_money(amount: object, currency: str, language: str, shown: str) -> None:
    assert format_money(amount, currency, language) == shown


def test_workspace_currency_is_set_in_settings_and_shown_on_a_profile(
    acme: Workspace, acme_owner: User, acme_client: Client
) -> None:
    assert acme.currency == "EUR"
    form = {
        "name": acme.name, "time_zone": acme.time_zone, "default_from_name": "", "default_from_email": "",
        "postal_address": acme.postal_address, "language": "en", "currency": "USD",
    }  # fmt: skip
    assert acme_client.post("/settings/workspace/", form).status_code == 302
    acme.refresh_from_db()
    assert acme.currency == "USD"
    assert acme_client.post("/settings/workspace/", {**form, "currency": "XXX"}).status_code == 400

    ana = contact_save(workspace=acme, data={"email": "ana@example.com"})[0]
    order_event(ana, "1", 1200.5, timezone.now() - timedelta(days=3))
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[ana.pk])
    page = html.unescape(acme_client.get(f"/audience/contacts/{ana.pk}/").content.decode())
    assert "$1,200.50" in page

    russian = Client(HTTP_ACCEPT_LANGUAGE="ru")
    acme_owner.language = "ru"
    acme_owner.save()
    russian.force_login(acme_owner)
    page = html.unescape(russian.get(f"/audience/contacts/{ana.pk}/").content.decode())
    assert f"1{NBSP}200,50{NBSP}$" in page
