"""Strict parsing of settings from the environment.

Every setting comes from an environment variable. A value that cannot be parsed stops start-up
with a message that names the variable and says what was expected, instead of surfacing later
as a confusing runtime error.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class EnvError(ImproperlyConfigured):
    """A setting in the environment is missing or malformed."""


def _bad(name: str, value: str, expected: str) -> EnvError:
    return EnvError(f"Environment variable {name}={value!r} is not valid: expected {expected}.")


class Env:
    """Reads typed values from a mapping (os.environ by default, a dict in tests)."""

    def __init__(self, source: Mapping[str, str] | None = None) -> None:
        self.source = os.environ if source is None else source

    def raw(self, name: str) -> str | None:
        value = self.source.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise _bad(name, value, "one of " + ", ".join(sorted(TRUE_WORDS | FALSE_WORDS)))

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise _bad(name, value, "a whole number") from None
        if minimum is not None and number < minimum:
            raise _bad(name, value, f"a whole number of at least {minimum}")
        return number

    def strings(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return default
        return [item.strip() for item in value.split(",") if item.strip()]

    def networks(self, name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Comma-separated IP addresses or CIDR networks (`10.0.0.0/8, 192.168.1.7, ::1`)."""
        result = []
        for item in self.strings(name, []):
            try:
                result.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise _bad(name, item, "IP addresses or networks such as 10.0.0.0/8, separated by commas") from None
        return result

    def choice(self, name: str, default: str, choices: list[str]) -> str:
        value = self.string(name, default)
        if value not in choices:
            raise _bad(name, value, "one of " + ", ".join(choices))
        return value

    def rate(self, name: str, default: str) -> str:
        """A DRF throttle rate such as '600/min'."""
        value = self.string(name, default)
        count, _, period = value.partition("/")
        if not count.isdigit() or period not in {"s", "sec", "m", "min", "h", "hour", "d", "day"}:
            raise _bad(name, value, "a rate like 600/min (periods: s, min, hour, day)")
        return value

    def database(self, name: str, value: str) -> dict[str, Any]:
        scheme = urlsplit(value).scheme
        if scheme not in {"postgres", "postgresql", "pgsql"}:
            raise _bad(name, value, "a PostgreSQL URL such as postgres://user:password@host:5432/dbname")
        try:
            config = dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True)
        except ValueError as error:
            raise _bad(name, value, f"a PostgreSQL URL ({error})") from None
        if not config.get("NAME"):
            raise _bad(name, value, "a PostgreSQL URL that names the database, e.g. .../esp")
        return dict(config)

    def redis_url(self, name: str, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in {"redis", "rediss", "redis+socket"}:
            raise _bad(name, value, "a Redis URL such as redis://host:6379/0 or redis+socket:///path/redis.sock")
        return value


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as the embedded launcher writes them (see esp/embedded.py)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values
