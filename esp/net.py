"""The address of the client behind a request, through the reverse proxies the operator trusts;
and the one guard of outbound connections made on a tenant's behalf."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError


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


def client_limit_key(meta: Mapping[str, Any]) -> str | None:
    """Who a per-client limit counts: the client's IPv4 address, or its IPv6 /64 network (one
    subscriber is handed a whole /64 and could take a new address for every request)."""
    ip = client_ip(meta)
    if ip is None or ":" not in ip:
        return ip
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


# --- The guard of outbound connections made on a tenant's behalf ---------------------------------
#
# A tenant chooses where its mail goes (an SMTP host, an ESP's API URL, later webhook URLs), so
# without a guard the server connects wherever a tenant says: to its own database, to a cloud's
# metadata service, to anything on the private network. The check runs on the addresses the
# name resolves to at connect time, and the socket connects to exactly the address checked, so
# a name that resolves to a public address for a form and to 127.0.0.1 a second later (DNS
# rebinding) is still refused. The operator allows named hosts (a local relay, Mailpit) with
# OUTBOUND_ALLOWED_HOSTS.

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not covered by `is_global` in every Python version, or routed to an embedded IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# One text whatever the address and whatever listens there: the answer must not tell a tenant
# what runs on the server's network.
REFUSED_TEXT = "connections to this address are not allowed"


class OutboundRefused(ConnectionError):
    """The destination resolves to an address the server does not connect to on a tenant's behalf."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host}: {REFUSED_TEXT}")
        self.host = host


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_is_public(address: Address) -> bool:
    """Whether a tenant's connection may go to this address: not loopback, private, link-local
    (cloud metadata at 169.254.169.254), CGNAT, multicast, unspecified or reserved — in IPv4, in
    IPv6 and in IPv4 carried inside IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_is_public(embedded)
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    )


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def outbound_host_allowed(host: str) -> bool:
    """Whether the operator allowed this host name (or literal address) by name."""
    allowed = {_normal_host(name) for name in getattr(settings, "OUTBOUND_ALLOWED_HOSTS", [])}
    return _normal_host(host) in allowed


def _resolve(host: str, port: int, type_: int = 0) -> list[tuple[Any, ...]]:
    """getaddrinfo, the one place names are resolved for outbound connections (tests replace it)."""
    return socket.getaddrinfo(host, port, 0, type_ or socket.SOCK_STREAM)


def outbound_addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    """The getaddrinfo entries to connect to for `host`, every one checked. Refuses the host
    when any address it resolves to is not public (a name that mixes a public and a private
    address is someone's trick, not a mail server), unless the operator allowed the host.
    Raises OutboundRefused, or socket.gaierror when the name does not resolve."""
    name = _normal_host(host)
    entries = _resolve(name, port)
    if outbound_host_allowed(name):
        return entries
    for entry in entries:
        if not address_is_public(ipaddress.ip_address(str(entry[4][0]))):
            raise OutboundRefused(host)
    return entries


def outbound_host_error(host: str, port: int = 443) -> str | None:
    """For a form: why this host would be refused, or None. A name that does not resolve (yet)
    is accepted here; connecting refuses it later if it then resolves somewhere private."""
    if not host.strip():
        return None
    try:
        outbound_addresses(host, port)
    except OutboundRefused:
        return REFUSED_TEXT
    except (OSError, UnicodeError, ValueError):
        return None
    return None


def outbound_connection(
    address: tuple[str, int],
    timeout: float | object | None = None,
    source_address: Any = None,
    socket_options: list[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """socket.create_connection through the guard: resolve once, check every address, connect
    to a checked one (so no second lookup can answer differently)."""
    host, port = address
    last_error: OSError | None = None
    for family, type_, proto, _canon, sockaddr in outbound_addresses(host, port):
        sock = socket.socket(family, type_, proto)
        try:
            for option in socket_options or []:
                sock.setsockopt(*option)
            # Anything but a number or None is a library's "default timeout" sentinel.
            if timeout is None or isinstance(timeout, (int, float)):
                sock.settimeout(timeout)  # type: ignore[arg-type]
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as error:
            last_error = error
            sock.close()
    if last_error is not None:
        raise last_error
    raise OSError(f"{host}: no address to connect to")


class _GuardedConnectionMixin:
    """urllib3's _new_conn with the socket made by outbound_connection (the TLS layer still
    sends the host name for SNI and certificate checks: only the socket's address changes)."""

    def _new_conn(self) -> socket.socket:
        connection: Any = self
        try:
            sock = outbound_connection(
                (connection._dns_host, connection.port),
                connection.timeout,
                source_address=connection.source_address,
                socket_options=connection.socket_options,
            )
        except socket.gaierror as error:
            raise NameResolutionError(connection.host, connection, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(
                connection, f"Connection to {connection.host} timed out. (connect timeout={connection.timeout})"
            ) from error
        except OSError as error:
            raise NewConnectionError(connection, f"Failed to establish a new connection: {error}") from error
        return sock


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """Every connection of the pool goes through the guard: the first request's and each
    redirect's (requests follows a redirect with a new request through this same adapter),
    and every reconnection of a kept-alive pool."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through a proxy the guard would check the proxy's address, not the destination's.
        raise requests.exceptions.InvalidProxyURL("Tenant connections do not go through proxies.")


def guard_session(session: requests.Session) -> requests.Session:
    """Route every connection of a requests Session (one a library made) through the guard."""
    # HTTP(S)_PROXY from the environment would route around the guard (see proxy_manager_for).
    session.trust_env = False
    session.proxies.clear()
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def outbound_session() -> requests.Session:
    """A requests Session for connections made on a tenant's behalf (ESP APIs, webhooks)."""
    return guard_session(requests.Session())
