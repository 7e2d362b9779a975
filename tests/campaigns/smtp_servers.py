"""What the tests' aiosmtpd servers share."""

from __future__ import annotations

from typing import Any


def ehlo_offering_pipelining(session: Any, hostname: str, responses: list[str]) -> list[str]:
    """aiosmtpd's EHLO answer with PIPELINING (RFC 2920) offered, as production MTAs do: the
    transport then sends MAIL, RCPT and DATA in one write, and the next message's with the
    data. (For a handler's `handle_EHLO`.)"""
    session.host_name = hostname
    return [*responses[:-1], "250-PIPELINING", responses[-1]]
