"""Encryption of stored secrets (provider credentials, webhook secrets).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) over a JSON object. The key is
settings.ESP_ENCRYPTION_KEY when set (comma-separated keys rotate: the first encrypts, all
decrypt), otherwise derived from SECRET_KEY with HKDF-SHA256 under a fixed label — so the
credentials never sit in the database in the clear, and a database dump alone does not reveal
them. SECRET_KEY_FALLBACKS decrypt too, so rotating SECRET_KEY the Django way keeps them readable.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Changing the label changes every derived key: it names what the key is for, so the same
# SECRET_KEY never yields the same bytes for sessions and for credentials.
HKDF_INFO = b"mini-esp campaigns.crypto credentials v1"


class DecryptionError(Exception):
    """The stored value was not encrypted with any of the configured keys (or was altered)."""


def derive_key(secret: str) -> bytes:
    """A Fernet key (url-safe base64 of 32 bytes) derived from an arbitrary secret string."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


@functools.lru_cache(maxsize=8)
def _fernet(explicit_keys: str, secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    if explicit_keys.strip():
        try:
            keys = [Fernet(key.strip().encode()) for key in explicit_keys.split(",") if key.strip()]
        except ValueError as error:
            raise ImproperlyConfigured(
                "ESP_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated."
            ) from error
    else:
        keys = [Fernet(derive_key(secret)) for secret in (secret_key, *fallbacks)]
    return MultiFernet(keys)


def fernet() -> MultiFernet:
    # Keyed on the settings' values, so a test that overrides them gets the matching keys.
    return _fernet(
        str(getattr(settings, "ESP_ENCRYPTION_KEY", "") or ""),
        str(settings.SECRET_KEY),
        tuple(str(k) for k in getattr(settings, "SECRET_KEY_FALLBACKS", []) or []),
    )


def encrypt_json(data: dict[str, Any]) -> str:
    return fernet().encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    """The dict stored by encrypt_json; an empty token is an empty dict."""
    if not token:
        return {}
    try:
        value = json.loads(fernet().decrypt(token.encode()))
    except InvalidToken as error:
        raise DecryptionError(
            "Stored credentials cannot be decrypted: SECRET_KEY or ESP_ENCRYPTION_KEY changed since they were saved."
        ) from error
    if not isinstance(value, dict):
        raise DecryptionError("Stored credentials are not an object.")
    return value
