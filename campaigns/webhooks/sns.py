"""Amazon SNS, the carrier of Amazon SES events: the message signature and the subscription
handshake, which anymail 15 leaves to us ("Future: Verify SNS message signature"; and its
auto-confirm needs boto3 and AWS credentials, where visiting SubscribeURL needs neither).

An SNS message is signed by Amazon with the key of a certificate it serves itself over https
from sns.<region>.amazonaws.com (SigningCertURL); the certificate is fetched once per URL and
kept in the process. Only that host is ever fetched — the URL comes from the request, so any
other host (or plain http) is refused before a connection is made.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from anymail.exceptions import AnymailWebhookValidationFailure
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

AMAZON_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
FETCH_TIMEOUT = 10  # seconds; SNS itself gives up on an endpoint after 15

# The keys each message type signs, in this order (the documented "string to sign").
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def is_amazon_url(url: str, *, path_suffix: str = "") -> bool:
    parts = urlsplit(url or "")
    return (
        parts.scheme == "https"
        and parts.port is None
        and not parts.username
        and bool(AMAZON_HOST.match(parts.hostname or ""))
        and parts.path.endswith(path_suffix)
    )


def string_to_sign(message: dict[str, Any]) -> bytes:
    keys = SIGNED_KEYS.get(str(message.get("Type")))
    if keys is None:
        raise AnymailWebhookValidationFailure("Unknown SNS message type")
    lines: list[str] = []
    for key in keys:
        # Subject is signed only when the message has one; every other key must be there.
        if key == "Subject" and message.get(key) is None:
            continue
        if not isinstance(message.get(key), str):
            raise AnymailWebhookValidationFailure(f"SNS message without {key}")
        lines += [key, message[key]]
    return ("\n".join(lines) + "\n").encode()


@functools.lru_cache(maxsize=16)
def signing_certificate(url: str) -> x509.Certificate:
    """Amazon's certificate at `url` (checked by the caller to be Amazon's host)."""
    response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    response.raise_for_status()
    return x509.load_pem_x509_certificate(response.content)


def verify_sns_message(message: dict[str, Any]) -> None:
    """Raise AnymailWebhookValidationFailure (→ 400) unless Amazon signed this message.
    A certificate that cannot be fetched raises requests' error (→ 500: SNS retries)."""
    url = str(message.get("SigningCertURL", ""))
    if not is_amazon_url(url, path_suffix=".pem"):
        raise AnymailWebhookValidationFailure("SNS SigningCertURL is not an Amazon SNS certificate URL")
    version = str(message.get("SignatureVersion", ""))
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()  # noqa: S303 -- SNS signature version 1 is defined with SHA1
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise AnymailWebhookValidationFailure("Unknown SNS SignatureVersion")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as error:
        raise AnymailWebhookValidationFailure("SNS signature is not base64") from error
    data = string_to_sign(message)
    key = signing_certificate(url).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AnymailWebhookValidationFailure("SNS certificate without an RSA key")
    try:
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature as error:
        raise AnymailWebhookValidationFailure("SNS signature does not match") from error


def confirm_subscription(message: dict[str, Any]) -> None:
    """Visit SubscribeURL: what confirms an SNS subscription to an https endpoint."""
    url = str(message.get("SubscribeURL", ""))
    if not is_amazon_url(url):
        raise AnymailWebhookValidationFailure("SNS SubscribeURL is not an Amazon SNS URL")
    response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    response.raise_for_status()
