"""Sending settings services and pages: sender identities (one default), delivery settings
(defaults without a row, validation), provider validation and webhook credentials."""

from __future__ import annotations

from datetime import time

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from campaigns.models import DeliverySettings, Provider, SenderIdentity
from campaigns.providers import default_sender, provider_webhook_credentials, sender_from_header
from campaigns.providers.services import (
    delivery_settings_get,
    delivery_settings_update,
    provider_create,
    sender_create,
    sender_delete,
    sender_set_default,
    sender_update,
)
from esp.models import Workspace

# --- providers -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_credentials_per_kind(acme: Workspace) -> None:
    mailgun = provider_create(
        workspace=acme,
        name="MG",
        kind="mailgun",
        credentials={"api_key": "k", "webhook_secret": "u:p", "webhook_signing_key": "sig"},
    )
    resend = provider_create(workspace=acme, name="RS", kind="resend", credentials={"api_key": "k"})
    smtp = provider_create(workspace=acme, name="SMTP", kind="smtp", credentials={"host": "h"})
    assert provider_webhook_credentials(mailgun) == {"webhook_secret": "u:p", "webhook_signing_key": "sig"}
    generated = provider_webhook_credentials(resend)
    assert list(generated) == ["webhook_secret"]  # no signing secret given: left out
    user, password = generated["webhook_secret"].split(":")
    assert len(user) == 12 and len(password) >= 32
    assert provider_webhook_credentials(smtp) == {}
    assert len({mailgun.webhook_token, resend.webhook_token, smtp.webhook_token}) == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "credentials", "field"),
    [
        ("smtp", {"host": ""}, "host"),
        ("smtp", {"host": "h", "use_tls": True, "use_ssl": True}, "use_ssl"),
        ("smtp", {"host": "h", "port": "0"}, "port"),
        ("smtp", {"host": "h", "port": "many"}, "port"),
        ("mailgun", {"api_key": "k", "api_url": "not a url"}, "api_url"),
        ("mailgun", {"api_key": "k", "webhook_secret": "no-colon"}, "webhook_secret"),
        ("mailjet", {"api_key": "k"}, "secret_key"),
        ("amazon_ses", {"region_name": "eu-west-1", "aws_access_key_id": "A"}, "aws_secret_access_key"),
        ("nonsense", {}, "kind"),
    ],
)
def test_provider_credentials_are_validated(
    acme: Workspace, kind: str, credentials: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        provider_create(workspace=acme, name="P", kind=kind, credentials=credentials)
    assert field in error.value.message_dict
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_provider_names_are_unique_per_workspace(acme: Workspace, globex: Workspace) -> None:
    provider_create(workspace=acme, name="Main", kind="outbox", credentials={})
    provider_create(workspace=globex, name="Main", kind="outbox", credentials={})
    with pytest.raises(ValidationError) as error:
        provider_create(workspace=acme, name="Main", kind="outbox", credentials={})
    assert "name" in error.value.message_dict


# --- senders -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_first_sender_is_the_default_and_only_one_is(acme: Workspace) -> None:
    first = sender_create(workspace=acme, from_name="Acme", from_email="News@Acme.example")
    second = sender_create(workspace=acme, from_name="Acme Support", from_email="help@acme.example", reply_to="")
    assert first.from_email == "news@acme.example"
    assert default_sender(acme) == first
    sender_set_default(workspace=acme, sender_id=second.pk)
    assert default_sender(acme) == second
    assert SenderIdentity.objects.filter(workspace=acme, is_default=True).count() == 1
    third = sender_create(workspace=acme, from_name="Sales", from_email="sales@acme.example", is_default=True)
    assert default_sender(acme) == third
    sender_delete(workspace=acme, sender_id=third.pk)
    assert default_sender(acme) is None


@pytest.mark.django_db
def test_sender_validation(acme: Workspace) -> None:
    sender = sender_create(workspace=acme, from_name="Acme", from_email="news@acme.example")
    for kwargs, field in (
        ({"from_name": "Acme", "from_email": "news@acme.example"}, "from_email"),
        ({"from_name": "", "from_email": "x@acme.example"}, "from_name"),
        ({"from_name": "X", "from_email": "not-an-address"}, "from_email"),
        ({"from_name": "X", "from_email": "x@acme.example", "reply_to": "nope"}, "reply_to"),
    ):
        with pytest.raises(ValidationError) as error:
            sender_create(workspace=acme, **kwargs)  # type: ignore[arg-type]
        assert field in error.value.message_dict
    updated = sender_update(
        workspace=acme, sender_id=sender.pk, from_name="Acme News", from_email="news@acme.example", reply_to="r@a.ex"
    )
    assert (updated.from_name, updated.reply_to) == ("Acme News", "r@a.ex")


@pytest.mark.django_db
def test_the_from_header(acme: Workspace) -> None:
    assert sender_from_header(None, acme) == '"Acme" <hello@acme.example>'
    sender = sender_create(workspace=acme, from_name='Магазин "Acme"', from_email="news@acme.example")
    assert sender_from_header(sender, acme) == '"Магазин \\"Acme\\"" <news@acme.example>'


@pytest.mark.django_db
def test_sender_pages(acme: Workspace, acme_client: Client) -> None:
    response = acme_client.post("/settings/sending/senders/", {"from_name": "Acme", "from_email": "news@acme.example"})
    assert response.status_code == 302
    sender = SenderIdentity.objects.get(workspace=acme)
    assert sender.is_default
    duplicate = acme_client.post("/settings/sending/senders/", {"from_name": "Acme", "from_email": "news@acme.example"})
    assert duplicate.status_code == 400 and "This sender exists already." in duplicate.content.decode()
    edit = acme_client.post(
        f"/settings/sending/senders/{sender.pk}/",
        {"from_name": "Acme News", "from_email": "news@acme.example", "reply_to": "care@acme.example"},
    )
    assert edit.status_code == 302
    sender.refresh_from_db()
    assert (sender.from_name, sender.reply_to) == ("Acme News", "care@acme.example")
    listing = acme_client.get("/settings/sending/senders/").content.decode()
    assert "Acme News &lt;news@acme.example&gt;" in listing and "care@acme.example" in listing
    acme_client.post(f"/settings/sending/senders/{sender.pk}/delete/")
    assert not SenderIdentity.objects.filter(workspace=acme).exists()


# --- delivery settings ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_defaults_without_a_row(acme: Workspace) -> None:
    current = delivery_settings_get(acme)
    assert current.pk is None
    assert (current.daily_cap, current.weekly_cap, current.quiet_hours_start, current.soft_bounce_limit) == (
        None,
        None,
        None,
        3,
    )
    assert (current.track_opens, current.track_clicks, current.utm_parameters) == (True, True, {})
    assert current.smart_sending_hours == 16
    assert not DeliverySettings.objects.exists()


@pytest.mark.django_db
def test_update_and_partial_update(acme: Workspace, globex: Workspace) -> None:
    delivery_settings_update(
        workspace=acme,
        data={
            "daily_cap": 2,
            "weekly_cap": 5,
            "quiet_hours_start": time(21, 0),
            "quiet_hours_end": time(8, 0),
            "soft_bounce_limit": 4,
            "track_opens": False,
            "track_clicks": True,
            "utm_parameters": {"UTM_Source": " newsletter ", "utm_medium": "email"},
        },
    )
    delivery_settings_update(workspace=acme, data={"daily_cap": None})  # only the daily cap changes
    row = DeliverySettings.objects.get(workspace=acme)
    assert (row.daily_cap, row.weekly_cap, row.quiet_hours_start, row.quiet_hours_end) == (
        None,
        5,
        time(21, 0),
        time(8, 0),
    )
    assert (row.soft_bounce_limit, row.track_opens, row.track_clicks) == (4, False, True)
    assert row.utm_parameters == {"utm_source": "newsletter", "utm_medium": "email"}
    assert delivery_settings_get(globex).pk is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"quiet_hours_start": time(22, 0)}, "quiet_hours_end"),
        ({"quiet_hours_end": time(7, 0)}, "quiet_hours_start"),
        ({"quiet_hours_start": time(7, 0), "quiet_hours_end": time(7, 0)}, "quiet_hours_end"),
        ({"daily_cap": 0}, "daily_cap"),
        ({"weekly_cap": -1}, "weekly_cap"),
        ({"soft_bounce_limit": 101}, "soft_bounce_limit"),
        ({"smart_sending_hours": 169}, "smart_sending_hours"),
        ({"smart_sending_hours": "soon"}, "smart_sending_hours"),
        ({"utm_parameters": {"source": "x"}}, "utm_parameters"),
        ({"utm_parameters": {"utm_source": ""}}, "utm_parameters"),
        ({"utm_parameters": ["utm_source"]}, "utm_parameters"),
    ],
)
def test_delivery_settings_validation(acme: Workspace, data: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        delivery_settings_update(workspace=acme, data=data)
    assert field in error.value.message_dict
    assert not DeliverySettings.objects.exists()


@pytest.mark.django_db
def test_delivery_settings_page(acme: Workspace, acme_client: Client) -> None:
    page = acme_client.get("/settings/sending/delivery/").content.decode()
    assert 'name="soft_bounce_limit" value="3"' in page
    assert 'name="smart_sending_hours" value="16"' in page and "0 turns it off." in page
    form = {
        "daily_cap": "1",
        "weekly_cap": "",
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "07:30",
        "soft_bounce_limit": "3",
        "smart_sending_hours": "0",
        "track_opens": "on",
        "utm_text": "utm_source=esp\nutm_campaign=spring",
    }
    assert acme_client.post("/settings/sending/delivery/", form).status_code == 302
    row = DeliverySettings.objects.get(workspace=acme)
    assert (row.daily_cap, row.weekly_cap, row.quiet_hours_start, row.quiet_hours_end) == (
        1,
        None,
        time(22, 0),
        time(7, 30),
    )
    assert (row.track_opens, row.track_clicks, row.smart_sending_hours) == (True, False, 0)
    assert row.utm_parameters == {"utm_source": "esp", "utm_campaign": "spring"}
    page = acme_client.get("/settings/sending/delivery/").content.decode()
    assert "utm_source=esp\nutm_campaign=spring" in page and 'value="22:00"' in page

    bad = acme_client.post("/settings/sending/delivery/", {**form, "quiet_hours_end": "", "utm_text": "source=x"})
    assert bad.status_code == 400
    text = bad.content.decode()
    assert "Set both ends of the quiet hours, or neither." in text
    assert "is not a UTM parameter" in text
    row.refresh_from_db()
    assert row.quiet_hours_end == time(7, 30)  # nothing saved
