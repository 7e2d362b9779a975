"""Provider credentials are encrypted with Fernet under a key derived from SECRET_KEY (HKDF)
or given as ESP_ENCRYPTION_KEY; nothing secret is stored in the clear."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client

from campaigns import crypto
from campaigns.models import Provider
from campaigns.providers import PermanentSendError, provider_webhook_credentials, transport_for
from campaigns.providers.registry import provider_credentials
from campaigns.providers.services import provider_create, provider_update
from esp.models import User, Workspace


def test_round_trip() -> None:
    data = {"api_key": "key-ÄÖ-секрет", "port": 587, "use_tls": True, "nested": {"a": [1, 2]}}
    token = crypto.encrypt_json(data)
    assert crypto.decrypt_json(token) == data
    assert "key-" not in token and "587" not in token
    # A fresh IV every time: the same credentials never give the same token.
    assert crypto.encrypt_json(data) != token
    assert crypto.decrypt_json("") == {}


def test_the_key_is_hkdf_sha256_of_the_secret_key(settings: object) -> None:
    settings.SECRET_KEY = "a test secret key"  # type: ignore[attr-defined]
    # RFC 5869 by hand: no salt = 32 zero bytes; one block of output (32 bytes).
    prk = hmac.new(b"\0" * 32, b"a test secret key", hashlib.sha256).digest()
    okm = hmac.new(prk, crypto.HKDF_INFO + b"\x01", hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(okm)
    assert crypto.derive_key("a test secret key") == expected
    token = crypto.encrypt_json({"x": 1})
    assert Fernet(expected).decrypt(token.encode()) == b'{"x":1}'


def test_another_secret_key_cannot_read_them_unless_it_is_a_fallback(settings: object) -> None:
    settings.SECRET_KEY = "old key"  # type: ignore[attr-defined]
    token = crypto.encrypt_json({"password": "p"})
    settings.SECRET_KEY = "new key"  # type: ignore[attr-defined]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_json(token)
    settings.SECRET_KEY_FALLBACKS = ["old key"]  # type: ignore[attr-defined]
    assert crypto.decrypt_json(token) == {"password": "p"}


def test_an_explicit_encryption_key_is_used_and_rotates(settings: object) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ESP_ENCRYPTION_KEY = old  # type: ignore[attr-defined]
    token = crypto.encrypt_json({"api_key": "k"})
    assert Fernet(old.encode()).decrypt(token.encode()) == b'{"api_key":"k"}'
    settings.ESP_ENCRYPTION_KEY = f"{new},{old}"  # type: ignore[attr-defined]
    assert crypto.decrypt_json(token) == {"api_key": "k"}  # old tokens still read
    fresh = crypto.encrypt_json({"api_key": "k"})
    assert Fernet(new.encode()).decrypt(fresh.encode()) == b'{"api_key":"k"}'  # new ones use the first key
    settings.ESP_ENCRYPTION_KEY = "not a fernet key"  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt_json({})


def test_a_tampered_token_is_refused() -> None:
    token = crypto.encrypt_json({"a": "b"})
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_json(tampered)


SECRETS = {
    "smtp": {"host": "smtp.hidden-host.example", "username": "relay-user-77", "password": "smtp-pass-91f3"},
    "mailgun": {
        "api_key": "key-mg-5c0ffee",
        "sender_domain": "mg.hidden.example",
        "webhook_secret": "hookuser:hookpass-8842",
        "webhook_signing_key": "mg-signing-0a1b2c",
    },
    "postmark": {"server_token": "pm-token-d00d"},
    "amazon_ses": {"region_name": "eu-west-1", "aws_access_key_id": "AKIAHIDDEN", "aws_secret_access_key": "ses/77x"},
    "resend": {"api_key": "re_hidden_123", "signing_secret": "whsec_hidden456"},
}


@pytest.mark.django_db
def test_no_plaintext_secret_anywhere_in_the_provider_table(acme: Workspace) -> None:
    for kind, credentials in SECRETS.items():
        provider = provider_create(workspace=acme, name=kind, kind=kind, credentials=credentials)
        expected: dict[str, Any] = dict(credentials)
        if kind == "smtp":  # the defaults of the fields left out
            expected.update({"port": 587, "use_tls": True, "use_ssl": False, "timeout": 30})
        else:  # a webhook secret is generated when none is given
            expected.setdefault("webhook_secret", provider_webhook_credentials(provider)["webhook_secret"])
        assert provider_credentials(Provider.objects.get(pk=provider.pk)) == expected
    provider_update(
        workspace=acme,
        provider_id=Provider.objects.get(name="postmark").pk,
        name="postmark",
        credentials={"server_token": "pm-token-rotated-e11"},
        rate_limit=5,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(p)::text FROM campaigns_provider p")
        table = "\n".join(row[0] for row in cursor.fetchall())
    assert table.count('"credentials":"gAAAAA') == len(SECRETS)  # every row holds a Fernet token
    for credentials in [*SECRETS.values(), {"server_token": "pm-token-rotated-e11"}]:
        for value in credentials.values():
            assert value not in table
    for generated in (provider_webhook_credentials(p)["webhook_secret"] for p in Provider.objects.exclude(kind="smtp")):
        assert generated.split(":")[1] not in table


@pytest.mark.django_db
def test_credentials_unreadable_after_a_key_change_fail_clearly(
    acme: Workspace, acme_owner: User, settings: object
) -> None:
    provider = provider_create(workspace=acme, name="MG", kind="mailgun", credentials={"api_key": "key-1"})
    settings.SECRET_KEY = "a different secret key"  # type: ignore[attr-defined]
    transport = transport_for(Provider.objects.get(pk=provider.pk))
    with pytest.raises(PermanentSendError) as error:
        transport.open()
    assert "cannot be decrypted" in str(error.value)
    acme_client = Client()
    acme_client.force_login(acme_owner)  # after the key change: sessions are signed with it too
    page = acme_client.get(f"/settings/sending/providers/{provider.pk}/")
    assert "cannot be decrypted" in page.content.decode()
    # Entering the secrets again makes the provider usable under the new key.
    response = acme_client.post(
        f"/settings/sending/providers/{provider.pk}/", {"name": "MG", "rate_limit": "0", "cred_api_key": "key-2"}
    )
    assert response.status_code == 302
    assert provider_credentials(Provider.objects.get(pk=provider.pk))["api_key"] == "key-2"
