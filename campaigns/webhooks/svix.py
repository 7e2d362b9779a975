"""Resend signs its webhooks the Svix way. anymail verifies them with the `svix` package, which
this project does not install for one HMAC; this is the same published algorithm:
base64(HMAC-SHA256(secret, "<svix-id>.<svix-timestamp>.<body>")) among the space-separated
"v1,<signature>" entries of the svix-signature header, with the timestamp no more than five
minutes away (a captured request cannot be replayed later).
https://docs.svix.com/receiving/verifying-payloads/how-manual
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from anymail.exceptions import AnymailWebhookValidationFailure

TOLERANCE = 5 * 60  # seconds


def secret_bytes(secret: str) -> bytes:
    secret = secret.strip()
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_") :]
    try:
        return base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("a Svix signing secret is whsec_ followed by base64") from error


def svix_signature(secret: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def verify_svix(secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
    message_id = headers.get("svix-id", "")
    timestamp = headers.get("svix-timestamp", "")
    signatures = headers.get("svix-signature", "")
    if not (message_id and timestamp and signatures):
        raise AnymailWebhookValidationFailure("Resend webhook without its Svix signature headers")
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError as error:
        raise AnymailWebhookValidationFailure("Resend webhook with a bad svix-timestamp") from error
    if age > TOLERANCE:
        raise AnymailWebhookValidationFailure("Resend webhook signed too long ago (or in the future)")
    expected = svix_signature(secret, message_id, timestamp, body)
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return
    raise AnymailWebhookValidationFailure("Resend webhook called with an incorrect signature")
