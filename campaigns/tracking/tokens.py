"""Opaque tokens in the links of a sent message: one per message (open pixel, unsubscribe,
preference center, view in browser) and one per tracked link (click redirect).

A token is the message id (and link index) in base62 followed by a truncated keyed BLAKE2b
MAC of them (a MAC by design, and half the cost of HMAC-SHA256 for the dozen tokens of every
message sent), keyed by a key derived from SECRET_KEY with a purpose label. Tokens of mail sent
before carry a truncated HMAC-SHA256 instead and still verify. Nothing readable rides in
it — no JSON, no URL, no address — and a token made for one purpose does not verify for the
other: a click token leaked through a Referer cannot unsubscribe anybody. Message ids are
global, so the HMAC also binds the workspace: swapping the id of another workspace's message
into a token breaks the signature."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from django.conf import settings

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Two digits per division: the send loop encodes a 96-bit MAC for every link of every message.
_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]
# 12 bytes of HMAC (96 bits) take 17 base62 digits: guessing one is hopeless online.
MAC_BYTES = 12
MAC_LENGTH = 17
# A link token separates message id and link index with a character outside base62.
LINK_SEPARATOR = "-"
MESSAGE_PURPOSE = "campaigns.tracking.message"
LINK_PURPOSE = "campaigns.tracking.link"
# Longer than any real token (ids < 62**11, indexes < 62**4): refuse junk before any work.
MAX_TOKEN_LENGTH = 40


def b62encode(number: int, width: int = 0) -> str:
    if number < 0:
        raise ValueError("negative")
    digits: list[str] = []
    while number:
        number, rest = divmod(number, 3844)
        digits.append(_PAIRS[rest])
    text = "".join(reversed(digits)).lstrip("0")
    return text.rjust(max(width, 1), "0")


_DIGITS_8 = 62**8
_DIGITS_4 = 62**4


def _b62_mac(number: int) -> str:
    """b62encode(number, MAC_LENGTH) for a MAC (< 2**96 < 62**17), a third faster: two divisions
    of the big number into 8-digit chunks, then small-number divisions only."""
    high, low = divmod(number, _DIGITS_8)
    top, middle = divmod(high, _DIGITS_8)
    digits = [ALPHABET[top]]
    for chunk in (middle, low):
        left, right = divmod(chunk, _DIGITS_4)
        digits += (_PAIRS[left // 3844], _PAIRS[left % 3844], _PAIRS[right // 3844], _PAIRS[right % 3844])
    return "".join(digits)


def b62decode(text: str) -> int | None:
    """The number, or None for an empty string, a foreign character or a leading zero (so each
    number has exactly one spelling and a token cannot be varied without changing its MAC)."""
    if not text or (len(text) > 1 and text[0] == "0"):
        return None
    number = 0
    for char in text:
        value = _VALUE.get(char)
        if value is None:
            return None
        number = number * 62 + value
    return number


def _key(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}:{secret}".encode()).digest()


@lru_cache(maxsize=16)
def _keyed(secret: str, purpose: str) -> hashlib.blake2b:
    # A key per purpose, derived once per secret, and the MAC's state after the key copied
    # for each token (the send loop signs every link of every message).
    return hashlib.blake2b(key=_key(secret, purpose), digest_size=MAC_BYTES)


@lru_cache(maxsize=16)
def _legacy_keyed(secret: str, purpose: str) -> hmac.HMAC:
    # What signed the tokens of mail sent before the BLAKE2b MAC: they still verify.
    return hmac.new(_key(secret, purpose), digestmod=hashlib.sha256)


def _secrets() -> list[str]:
    # The current key signs; old keys (SECRET_KEY_FALLBACKS) still verify mail sent before a
    # key rotation.
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def _mac_with(keyed: hashlib.blake2b | hmac.HMAC, payload: str) -> str:
    signer = keyed.copy()
    signer.update(payload.encode())
    return _b62_mac(int.from_bytes(signer.digest()[:MAC_BYTES], "big"))


def _mac(secret: str, purpose: str, payload: str) -> str:
    return _mac_with(_keyed(secret, purpose), payload)


def _verify(purpose: str, payload: str, mac: str) -> bool:
    return any(
        hmac.compare_digest(_mac_with(keyed(secret, purpose), payload), mac)
        for secret in _secrets()
        for keyed in (_keyed, _legacy_keyed)
    )


def message_token(message_id: int) -> str:
    payload = b62encode(message_id)
    return payload + _mac(settings.SECRET_KEY, MESSAGE_PURPOSE, payload)


def link_token(message_id: int, index: int) -> str:
    return LinkSigner(message_id)(index)


class LinkSigner:
    """Link tokens of one message: the id's encoding and the key are looked up once for all
    the links of a message."""

    __slots__ = ("keyed", "prefix")

    def __init__(self, message_id: int) -> None:
        self.prefix = b62encode(message_id) + LINK_SEPARATOR
        self.keyed = _keyed(settings.SECRET_KEY, LINK_PURPOSE)

    def __call__(self, index: int) -> str:
        payload = self.prefix + (ALPHABET[index] if index < 62 else b62encode(index))
        return payload + _mac_with(self.keyed, payload)


def read_message_token(token: str) -> int | None:
    """The message id of a genuine message token, else None."""
    if not (MAC_LENGTH < len(token) <= MAX_TOKEN_LENGTH):
        return None
    payload, mac = token[:-MAC_LENGTH], token[-MAC_LENGTH:]
    message_id = b62decode(payload)
    if message_id is None or not _verify(MESSAGE_PURPOSE, payload, mac):
        return None
    return message_id


def read_link_token(token: str) -> tuple[int, int] | None:
    """(message id, link index) of a genuine link token, else None."""
    if not (MAC_LENGTH < len(token) <= MAX_TOKEN_LENGTH):
        return None
    payload, mac = token[:-MAC_LENGTH], token[-MAC_LENGTH:]
    id_part, separator, index_part = payload.partition(LINK_SEPARATOR)
    message_id, index = b62decode(id_part), b62decode(index_part)
    if not separator or message_id is None or index is None or not _verify(LINK_PURPOSE, payload, mac):
        return None
    return message_id, index
