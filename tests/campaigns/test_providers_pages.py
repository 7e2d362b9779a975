"""Settings → Sending pages: providers (owners only, credentials write-only, send test through
the page to a real SMTP server), sender identities, delivery settings; roles and isolation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client

from campaigns.models import DeliverySettings, Provider, SenderIdentity
from campaigns.providers import default_provider, provider_webhook_credentials
from campaigns.providers.registry import provider_credentials
from campaigns.providers.services import provider_create, sender_create
from esp.models import Role, Workspace
from tests.campaigns.test_providers_smtp import SmtpSink, free_port
from tests.conftest import logged_in
from tests.factories import member

# Their SMTP sinks and fake ESP APIs listen on loopback.
pytestmark = pytest.mark.usefixtures("local_outbound")


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def _smtp_form(sink: SmtpSink, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "kind": "smtp",
        "name": "Relay",
        "rate_limit": "50",
        "cred_host": "127.0.0.1",
        "cred_port": str(sink.port),
        "cred_username": "",
        "cred_password": "relay-password-5x9",
        "cred_timeout": "5",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_owner_adds_an_smtp_provider_and_the_password_is_never_shown(
    acme: Workspace, acme_client: Client, smtp_sink: SmtpSink
) -> None:
    response = acme_client.post("/settings/sending/providers/new/", _smtp_form(smtp_sink))
    assert response.status_code == 302 and response["Location"] == "/settings/sending/providers/"

    provider = Provider.objects.in_workspace(acme).get()
    assert (provider.name, provider.kind, provider.rate_limit, provider.is_default) == ("Relay", "smtp", 50, False)
    assert provider_credentials(provider) == {
        "host": "127.0.0.1",
        "port": smtp_sink.port,
        "password": "relay-password-5x9",
        "use_tls": False,
        "use_ssl": False,
        "timeout": 5,
    }
    listing = acme_client.get("/settings/sending/providers/").content.decode()
    edit = acme_client.get(f"/settings/sending/providers/{provider.pk}/").content.decode()
    assert "Relay" in listing and "SMTP" in listing and "50" in listing
    assert 'value="127.0.0.1"' in edit  # not secret: shown for editing
    for page in (listing, edit):
        assert "relay-password-5x9" not in page
    assert re.search(r'<input type="password" name="cred_password"[^>]*>', edit)
    assert "value=" not in re.search(r'<input type="password" name="cred_password"[^>]*>', edit).group(0)  # type: ignore[union-attr]


@pytest.mark.django_db
def test_an_empty_secret_keeps_the_stored_one_and_a_new_one_replaces_it(
    acme: Workspace, acme_client: Client, smtp_sink: SmtpSink
) -> None:
    provider = provider_create(
        workspace=acme, name="Relay", kind="smtp", credentials=smtp_sink.credentials(password="first-pass")
    )
    url = f"/settings/sending/providers/{provider.pk}/"
    form = _smtp_form(smtp_sink, name="Relay 2", cred_password="")
    form.pop("kind")
    assert acme_client.post(url, form).status_code == 302
    provider.refresh_from_db()
    assert provider.name == "Relay 2"
    assert provider_credentials(provider)["password"] == "first-pass"

    assert acme_client.post(url, {**form, "cred_password": "second-pass"}).status_code == 302
    provider.refresh_from_db()
    assert provider_credentials(provider)["password"] == "second-pass"


@pytest.mark.django_db
def test_the_form_shows_the_fields_of_the_chosen_kind(acme_client: Client) -> None:
    mailgun = acme_client.get("/settings/sending/providers/new/?kind=mailgun").content.decode()
    assert 'name="cred_api_key"' in mailgun and 'name="cred_webhook_signing_key"' in mailgun
    assert 'name="cred_host"' not in mailgun
    smtp = acme_client.get("/settings/sending/providers/new/?kind=smtp", HTTP_HX_REQUEST="true").content.decode()
    assert 'name="cred_host"' in smtp and 'name="cred_api_key"' not in smtp
    ses = acme_client.get("/settings/sending/providers/new/?kind=amazon_ses").content.decode()
    assert 'name="cred_aws_secret_access_key"' in ses and 'name="cred_region_name"' in ses


@pytest.mark.django_db
def test_required_credentials_are_checked(acme: Workspace, acme_client: Client) -> None:
    response = acme_client.post(
        "/settings/sending/providers/new/", {"kind": "mailgun", "name": "MG", "rate_limit": "0", "cred_api_key": ""}
    )
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not Provider.objects.in_workspace(acme).exists()


@pytest.mark.django_db
def test_an_esp_provider_shows_its_absolute_webhook_url_and_its_generated_secret_once(
    acme: Workspace, acme_client: Client
) -> None:
    response = acme_client.post(
        "/settings/sending/providers/new/",
        {"kind": "postmark", "name": "PM", "rate_limit": "0", "cred_server_token": "pm-token-secret"},
        follow=True,
    )
    provider = Provider.objects.in_workspace(acme).get()
    url = f"{settings.PUBLIC_BASE_URL}/webhooks/{provider.webhook_token}/postmark/tracking/"
    assert len(provider.webhook_token) == 32
    secret = provider_webhook_credentials(provider)["webhook_secret"]
    user, password = secret.split(":")
    page = response.content.decode()
    assert url in page
    scheme, rest = url.split("://")
    assert f"{scheme}://{user}:{password}@{rest}" in page  # shown once, ready to paste
    again = acme_client.get("/settings/sending/providers/").content.decode()
    assert url in again and password not in again and "pm-token-secret" not in again


@pytest.mark.django_db
def test_send_test_through_the_page_reaches_the_smtp_server(
    acme: Workspace, acme_client: Client, smtp_sink: SmtpSink
) -> None:
    sender_create(workspace=acme, from_name="Acme Shop", from_email="news@acme.example")
    provider = provider_create(workspace=acme, name="Relay", kind="smtp", credentials=smtp_sink.credentials())

    response = acme_client.post(f"/settings/sending/providers/{provider.pk}/test/", follow=True)
    assert response.status_code == 200
    (received,) = smtp_sink.received
    assert received.rcpt_tos == ["owner@acme.test"]
    assert received.mail_from == "news@acme.example"
    assert received.message["Subject"] == "Test from Acme through Relay"
    assert f"Relay: Sent to owner@acme.test (provider message id {received.message['Message-ID']})" in (
        response.content.decode().replace("&lt;", "<").replace("&gt;", ">")
    )

    partial = acme_client.post(f"/settings/sending/providers/{provider.pk}/test/", HTTP_HX_REQUEST="true")
    assert partial.content.decode().count("<small") == 1 and "Sent to owner@acme.test" in partial.content.decode()
    assert len(smtp_sink.received) == 2


@pytest.mark.django_db
def test_send_test_reports_the_classified_error(acme: Workspace, acme_client: Client, smtp_sink: SmtpSink) -> None:
    smtp_sink.handler.rcpt_replies["owner@acme.test"] = "550 5.1.1 Mailbox does not exist"
    refused = provider_create(workspace=acme, name="Relay", kind="smtp", credentials=smtp_sink.credentials())
    down = provider_create(
        workspace=acme, name="Down", kind="smtp", credentials={"host": "127.0.0.1", "port": free_port(), "timeout": 2}
    )
    page = acme_client.post(f"/settings/sending/providers/{refused.pk}/test/", follow=True).content.decode()
    assert "Refused: owner@acme.test: 550 5.1.1 Mailbox does not exist" in page
    page = acme_client.post(f"/settings/sending/providers/{down.pk}/test/", follow=True).content.decode()
    assert "Temporary failure: SMTP connection failed" in page


@pytest.mark.django_db
def test_default_provider_can_be_chosen_and_given_back_to_the_outbox(acme: Workspace, acme_client: Client) -> None:
    first = provider_create(workspace=acme, name="A", kind="smtp", credentials={"host": "a.example"})
    second = provider_create(workspace=acme, name="B", kind="smtp", credentials={"host": "b.example"})
    assert default_provider(acme) is None
    acme_client.post(f"/settings/sending/providers/{first.pk}/default/")
    assert default_provider(acme) == first
    acme_client.post(f"/settings/sending/providers/{second.pk}/default/")
    assert default_provider(acme) == second
    assert list(Provider.objects.in_workspace(acme).filter(is_default=True)) == [second]
    acme_client.post("/settings/sending/providers/outbox/default/")
    assert default_provider(acme) is None
    acme_client.post(f"/settings/sending/providers/{first.pk}/default/")
    acme_client.post(f"/settings/sending/providers/{first.pk}/delete/")
    assert default_provider(acme) is None
    assert list(Provider.objects.in_workspace(acme)) == [second]


@pytest.mark.django_db
def test_roles(acme: Workspace, smtp_sink: SmtpSink) -> None:
    provider = provider_create(workspace=acme, name="Relay", kind="smtp", credentials=smtp_sink.credentials())
    sender = sender_create(workspace=acme, from_name="Acme", from_email="news@acme.example")
    marketer = logged_in(member(acme, Role.MARKETER, email="marketer@acme.test"))
    viewer = logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))

    # Providers hold credentials: only owners change them; marketers may check them.
    assert marketer.get("/settings/sending/providers/").status_code == 200
    assert marketer.get(f"/settings/sending/providers/{provider.pk}/").status_code == 200
    assert marketer.get("/settings/sending/providers/new/").status_code == 403
    assert marketer.post("/settings/sending/providers/new/", _smtp_form(smtp_sink, name="Mine")).status_code == 403
    assert marketer.post(f"/settings/sending/providers/{provider.pk}/", _smtp_form(smtp_sink)).status_code == 403
    assert marketer.post(f"/settings/sending/providers/{provider.pk}/default/").status_code == 403
    assert marketer.post(f"/settings/sending/providers/{provider.pk}/delete/").status_code == 403
    assert marketer.post(f"/settings/sending/providers/{provider.pk}/test/").status_code == 302
    assert smtp_sink.received[0].rcpt_tos == ["marketer@acme.test"]
    # Senders and delivery settings: marketers edit.
    assert (
        marketer.post("/settings/sending/senders/", {"from_name": "M", "from_email": "m@acme.example"}).status_code
        == 302
    )
    assert marketer.post("/settings/sending/delivery/", {"soft_bounce_limit": "2"}).status_code == 302
    # Viewers look.
    for url in (
        "/settings/sending/providers/",
        f"/settings/sending/providers/{provider.pk}/",
        "/settings/sending/senders/",
        f"/settings/sending/senders/{sender.pk}/",
        "/settings/sending/delivery/",
    ):
        assert viewer.get(url).status_code == 200, url
    for url in (
        f"/settings/sending/providers/{provider.pk}/test/",
        "/settings/sending/senders/",
        f"/settings/sending/senders/{sender.pk}/default/",
        f"/settings/sending/senders/{sender.pk}/delete/",
        "/settings/sending/delivery/",
    ):
        assert viewer.post(url, {"from_name": "V", "from_email": "v@acme.example"}).status_code == 403, url
    assert Provider.objects.in_workspace(acme).count() == 1
    assert SenderIdentity.objects.in_workspace(acme).count() == 2
    assert DeliverySettings.objects.get(workspace=acme).soft_bounce_limit == 2


@pytest.mark.django_db
def test_another_workspaces_provider_and_sender_are_404(
    acme_client: Client, globex: Workspace, smtp_sink: SmtpSink
) -> None:
    provider = provider_create(workspace=globex, name="Theirs", kind="smtp", credentials=smtp_sink.credentials())
    sender = sender_create(workspace=globex, from_name="Globex", from_email="news@globex.example")
    for url in (
        f"/settings/sending/providers/{provider.pk}/",
        f"/settings/sending/providers/{provider.pk}/test/",
        f"/settings/sending/providers/{provider.pk}/default/",
        f"/settings/sending/providers/{provider.pk}/delete/",
        f"/settings/sending/senders/{sender.pk}/",
        f"/settings/sending/senders/{sender.pk}/default/",
        f"/settings/sending/senders/{sender.pk}/delete/",
    ):
        assert acme_client.post(url, {"name": "x", "from_name": "x", "from_email": "x@x.example"}).status_code == 404
    assert "Theirs" not in acme_client.get("/settings/sending/providers/").content.decode()
    assert "news@globex.example" not in acme_client.get("/settings/sending/senders/").content.decode()
    assert smtp_sink.received == []
    assert Provider.objects.get(pk=provider.pk).name == "Theirs"
    assert SenderIdentity.objects.filter(pk=sender.pk).exists()


@pytest.mark.django_db
def test_settings_menu_links_to_the_sending_pages(acme_client: Client) -> None:
    page = acme_client.get("/").content.decode()
    for url in ("/settings/sending/providers/", "/settings/sending/senders/", "/settings/sending/delivery/"):
        assert f'href="{url}"' in page
