"""Is this open or click a person, or a machine fetching on their behalf?

Machine opens and clicks are kept (MessageEvent.is_machine) so nothing is lost, but reports and
engagement conditions leave them out. The rules are the ones ESPs use in practice:

- Apple Mail Privacy Protection loads every image of every message through Apple's proxy as it
  arrives, whether or not anyone reads it. Its fetches carry a bare "Mozilla/5.0" user agent
  and come from Apple's network (17.0.0.0/8).
- Google's and Yahoo's image proxies fetch when the person opens the message: a human open
  through a proxy, not a machine.
- Security scanners (Barracuda, Mimecast, Proofpoint, Microsoft Safe Links, …) fetch images
  and follow links seconds after delivery, with their own or a script's user agent, sometimes
  with HEAD requests. Anything within SCANNER_WINDOW of the send is a scanner: nobody reads a
  message that fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

SCANNER_WINDOW = dt.timedelta(seconds=10)
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
APPLE_MPP_USER_AGENT = "Mozilla/5.0"
# Lower-case substrings of user agents that only machines send.
SCANNER_MARKERS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "microsoft office protocol discovery",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "headlesschrome",
    "phantomjs",
    "symantec",
    "messagelabs",
    "trendmicro",
    "forcepoint",
    "ironport",
    "zscaler",
    "sophos",
    "fortiguard",
)
HUMAN_PROXIES = {"googleimageproxy": "google", "yahoomailproxy": "yahoo"}


@dataclass(frozen=True)
class Verdict:
    is_machine: bool
    # Why it is a machine ("apple_mpp", "scanner_agent", "too_fast", "head", "no_user_agent"), or "".
    reason: str = ""
    # The image proxy a human open came through ("google", "yahoo"), or "".
    proxy: str = ""

    def details(self) -> dict[str, str]:
        return {k: v for k, v in (("machine", self.reason), ("proxy", self.proxy)) if v}


def _is_apple(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in APPLE_NETWORK
    except ValueError:
        return False


def classify(
    *,
    kind: str,
    user_agent: str,
    ip: str,
    method: str,
    sent_at: dt.datetime | None,
    now: dt.datetime,
) -> Verdict:
    """`kind` is "open" or "click". The order matters: a proxy we know to act for a person
    wins over the timing rule (Gmail's proxy may fetch right after a fast human open)."""
    agent = user_agent.strip()
    lowered = agent.lower()
    for marker, proxy in HUMAN_PROXIES.items():
        if marker in lowered:
            return Verdict(False, proxy=proxy)
    if method == "HEAD":
        return Verdict(True, "head")
    if not agent:
        return Verdict(True, "no_user_agent")
    if agent == APPLE_MPP_USER_AGENT or (kind == "open" and _is_apple(ip)):
        # Apple's proxy fetches images; clicks come from the person's own device, so an Apple
        # address on a click is an Apple employee, not the proxy.
        return Verdict(True, "apple_mpp" if kind == "open" else "scanner_agent")
    if any(marker in lowered for marker in SCANNER_MARKERS):
        return Verdict(True, "scanner_agent")
    if sent_at is not None and now - sent_at < SCANNER_WINDOW:
        return Verdict(True, "too_fast")
    return Verdict(False)
