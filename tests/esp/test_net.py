"""The client's address through the reverse proxies the operator trusts, and only those."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import override_settings

from esp.net import client_ip
from esp.settings.env import Env, EnvError

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::1")]


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    meta = {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "17.58.101.4"}
    assert client_ip(meta) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=PROXIES)
@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("10.0.0.2", "17.58.101.4", "17.58.101.4"),  # one proxy
        ("10.0.0.2", "17.58.101.4, 10.1.2.3", "17.58.101.4"),  # two trusted hops
        # The client wrote a first address itself: the proxy's own entry wins.
        ("10.0.0.2", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
        ("2001:db8::1", "2001:db8:ffff::5", "2001:db8:ffff::5"),
        ("10.0.0.2", "", "10.0.0.2"),  # the proxy's own request
        ("10.0.0.2", "10.9.9.9", "10.9.9.9"),  # only proxies: the nearest client-side one
        ("10.0.0.2", "not-an-ip", None),  # garbled: no address rather than a wrong one
        ("198.51.100.7", "17.58.101.4", "198.51.100.7"),  # not from a proxy: header ignored
        ("", "17.58.101.4", None),
    ],
)
def test_behind_trusted_proxies(remote: str, forwarded: str, client: str | None) -> None:
    assert client_ip({"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}) == client


def test_trusted_proxies_setting_is_parsed_strictly() -> None:
    env = Env({"P": "10.0.0.0/8, 192.168.1.7 ,::1", "BAD": "10.0.0.0/8, proxy.local"})
    assert [str(n) for n in env.networks("P")] == ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]
    assert env.networks("MISSING") == []
    with pytest.raises(EnvError, match=r"BAD='proxy\.local'"):
        env.networks("BAD")
