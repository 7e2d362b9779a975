"""The address of the client behind a request, through the reverse proxies the operator trusts."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in network for network in settings.TRUSTED_PROXIES)


def client_ip(meta: Mapping[str, Any]) -> str | None:
    """The client's IP address from a request's META, or None when there is no valid one.

    REMOTE_ADDR, unless it is a trusted proxy (settings.TRUSTED_PROXIES): then X-Forwarded-For
    is read from the right (each proxy appends the address it saw), skipping trusted proxies;
    the first address that is not one is the client. Addresses left of it were written by the
    client or by proxies nobody vouches for, so they are never believed."""
    remote = _address(str(meta.get("REMOTE_ADDR") or ""))
    if remote is None or not _trusted(remote):
        return str(remote) if remote is not None else None
    forwarded = str(meta.get("HTTP_X_FORWARDED_FOR") or "").strip()
    if not forwarded:
        return str(remote)  # a request the proxy made itself
    nearest = remote
    for hop in reversed(forwarded.split(",")):
        address = _address(hop)
        if address is None:
            return None  # a garbled chain: no address is better than a wrong one
        if not _trusted(address):
            return str(address)
        nearest = address
    return str(nearest)  # every hop a trusted proxy: the client is inside, the leftmost one
