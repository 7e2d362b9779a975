"""Deliverability by mailbox provider: bounce and complaint rates of the mail each provider
received, against the bulk-sender rules Gmail and Yahoo enforce since 2024 (a spam complaint
rate kept under 0.10 %, never reaching 0.30 %), and the warning the whole app shows when the
last seven days crossed one.

The provider comes from the recipient's domain by the table below (MX lookups are not made:
a provider's own domains cover nearly all of its mail; a company domain hosted by Google
counts as "others"). Counters are analytics.kpis' flags of each message (MessageFact), so a
complaint or bounce here is the one the Overview counts.

`ProviderDay` (workspace × day × provider) is recomputed for the last days by the beat and
for any period by the rebuild; pages read only it.
"""

# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.journey_models import ProviderDay
from analytics.kpis import COUNTERS, Totals
from campaigns.models import Message
from esp.models import Workspace

logger = logging.getLogger(__name__)

OTHERS = "others"
# provider -> (its label, exact domains, domain prefixes a country suffix follows: yandex.*)
PROVIDERS: dict[str, tuple[object, tuple[str, ...], tuple[str, ...]]] = {
    "gmail": ("Gmail", ("gmail.com", "googlemail.com"), ()),
    "yahoo": (
        "Yahoo",
        ("yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de"),
        ("yahoo.",),
    ),
    "outlook": (
        "Outlook",
        ("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "live.co.uk", "passport.com"),
        ("hotmail.", "outlook.", "live."),
    ),
    "mailru": ("Mail.ru", ("mail.ru", "inbox.ru", "list.ru", "bk.ru", "internet.ru", "mail.ua"), ()),
    "yandex": ("Yandex", ("ya.ru", "yandex.com", "narod.ru"), ("yandex.",)),
    "abv": ("Abv.bg", ("abv.bg",), ()),
    OTHERS: (_("Others"), (), ()),
}
PROVIDER_ORDER = tuple(PROVIDERS)

# Gmail / Yahoo bulk-sender thresholds on the spam complaint rate (complaints ÷ delivered).
COMPLAINT_WARNING = 0.001  # keep under 0.10 %
COMPLAINT_LIMIT = 0.003  # never reach 0.30 %
# Not a Gmail / Yahoo rule: a hard-bounce rate above 2 % is the common sign of a stale list.
BOUNCE_WARNING = 0.02
# A provider with less mail than this in the window is judged with the rest, not alone: one
# complaint among 50 messages is no signal.
MIN_VOLUME = 200
WARNING_DAYS = 7
_WARNING_CACHE_SECONDS = 300

_COUNTERS = ("sent", "delivered", "bounced", "bounced_hard", "complained")


# A domain under the reserved TLD .test (RFC 6761) named after a provider's — gmail.com.test —
# counts as that provider: such an address can never reach anyone, so the demo shop and the
# tests spread their contacts over providers with it.
TEST_SUFFIX = ".test"


def provider_of(address_or_domain: str) -> str:
    """The provider key of an address or domain (`others` when not in the table)."""
    domain = address_or_domain.rsplit("@", 1)[-1].strip().lower().rstrip(".").removesuffix(TEST_SUFFIX)
    for key, (_label, exact, prefixes) in PROVIDERS.items():
        if domain in exact or any(domain.startswith(prefix) for prefix in prefixes):
            return key
    return OTHERS


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def provider_sql(domain: str) -> str:
    """The same table as a SQL CASE over a domain expression."""
    cases = []
    for key, (_label, exact, prefixes) in PROVIDERS.items():
        tests = []
        if exact:
            tests.append(f"{domain} IN ({', '.join(_quote(d) for d in exact)})")
        tests += [f"{domain} LIKE {_quote(prefix + '%%')}" for prefix in prefixes]
        if tests:
            cases.append(f"WHEN {' OR '.join(tests)} THEN {_quote(key)}")
    return f"(CASE {' '.join(cases)} ELSE {_quote(OTHERS)} END)"


_BY_NAME = {c.name: c for c in COUNTERS}
_REBUILD = f"""
INSERT INTO analytics_providerday (workspace_id, day, provider, {", ".join(_COUNTERS)})
SELECT f.workspace_id, f.day, p.provider, {", ".join(f"sum({_BY_NAME[n].sql('f.flags')})" for n in _COUNTERS)}
FROM analytics_messagefact f
JOIN {Message._meta.db_table} m ON m.id = f.message_id
CROSS JOIN LATERAL (
    SELECT {provider_sql("regexp_replace(rtrim(lower(split_part(m.to_email, '@', 2)), '.'), '[.]test$', '')")}
        AS provider
) p
WHERE f.workspace_id = %(ws)s AND f.day >= %(since)s AND (%(until)s::date IS NULL OR f.day <= %(until)s::date)
GROUP BY f.workspace_id, f.day, p.provider
"""


def provider_days_rebuild(*, workspace: Workspace, since: dt.date, until: dt.date | None = None) -> None:
    """Recompute the workspace's ProviderDay rows from `since` (to `until`) from its message
    facts. The facts' index on (workspace, day) bounds it to the days asked for."""
    with transaction.atomic(), connection.cursor() as cursor:
        deleted = ProviderDay.objects.filter(workspace=workspace, day__gte=since)
        if until is not None:
            deleted = deleted.filter(day__lte=until)
        deleted.delete()
        cursor.execute(_REBUILD, {"ws": workspace.pk, "since": since, "until": until})
    cache.delete(_warning_key(workspace.pk))


RECENT_DAYS = WARNING_DAYS + 1


def provider_days_refresh() -> int:
    """The beat's job: every workspace's last days again (the facts of a day change as late
    events arrive)."""
    done = 0
    for workspace in Workspace.objects.order_by("pk"):
        today = timezone.now().astimezone(workspace.zone).date()
        provider_days_rebuild(workspace=workspace, since=today - dt.timedelta(days=RECENT_DAYS))
        done += 1
    return done


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderFigures:
    provider: str
    label: str
    totals: Totals
    complaint_level: str  # "", "warning" (≥ 0.10 %) or "danger" (≥ 0.30 %)
    bounce_level: str
    judged: bool  # enough mail to be judged alone


def _level(rate: float | None, warning: float, limit: float | None = None) -> str:
    if rate is None:
        return ""
    if limit is not None and rate >= limit:
        return "danger"
    return "warning" if rate >= warning else ""


def figures_of(provider: str, totals: Totals) -> ProviderFigures:
    judged = totals.sent >= MIN_VOLUME
    hard_bounce_rate = totals.bounced_hard / totals.sent if totals.sent else None
    return ProviderFigures(
        provider=provider,
        label=str(PROVIDERS[provider][0]) if provider in PROVIDERS else provider,
        totals=totals,
        complaint_level=_level(totals.complaint_rate, COMPLAINT_WARNING, COMPLAINT_LIMIT) if judged else "",
        bounce_level=_level(hard_bounce_rate, BOUNCE_WARNING) if judged else "",
        judged=judged,
    )


def by_provider(*, workspace: Workspace, start: dt.date, end: dt.date) -> list[ProviderFigures]:
    """Each provider's figures over the period, in the table's order, then all together."""
    rows = {
        row["provider"]: Totals.of({n: row[n] for n in _COUNTERS})
        for row in ProviderDay.objects.filter(workspace=workspace, day__gte=start, day__lte=end)
        .values("provider")
        .annotate(**{n: Sum(n) for n in _COUNTERS})
    }
    return [figures_of(p, rows.get(p, Totals())) for p in PROVIDER_ORDER]


def total_of(figures: list[ProviderFigures]) -> ProviderFigures:
    total = Totals()
    for item in figures:
        total = total + item.totals
    return figures_of("all", total)


def timeline(*, workspace: Workspace, start: dt.date, end: dt.date) -> list[tuple[dt.date, dict[str, Totals]]]:
    """Per day, each provider's figures (for the chart of complaint rates)."""
    found: dict[dt.date, dict[str, Totals]] = {}
    rows = ProviderDay.objects.filter(workspace=workspace, day__gte=start, day__lte=end)
    for row in rows.values("day", "provider", *_COUNTERS):
        values: dict[str, Any] = dict(row)
        found.setdefault(values["day"], {})[values["provider"]] = Totals(**{n: values[n] for n in _COUNTERS})
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    return [(day, found.get(day, {})) for day in days]


# --- the warning across the app --------------------------------------------------------------


@dataclass(frozen=True)
class Warning:
    level: str  # "warning" or "danger"
    provider: str  # a label, or "" for all mail
    what: str  # "complaints" or "bounces"
    rate: float


def _warning_key(workspace_id: int) -> str:
    return f"analytics:deliverability-warning:{workspace_id}"


def warning_compute(*, workspace: Workspace, today: dt.date | None = None) -> Warning | None:
    """The worst threshold the last WARNING_DAYS days crossed: all mail together, or one
    provider with enough mail of its own."""
    today = today or timezone.now().astimezone(workspace.zone).date()
    figures = by_provider(workspace=workspace, start=today - dt.timedelta(days=WARNING_DAYS - 1), end=today)
    candidates = [total_of(figures), *figures]
    found: list[Warning] = []
    for item in candidates:
        label = "" if item.provider == "all" else item.label
        if item.complaint_level and item.totals.complaint_rate is not None:
            found.append(Warning(item.complaint_level, label, "complaints", item.totals.complaint_rate))
        if item.bounce_level and item.totals.sent:
            found.append(Warning(item.bounce_level, label, "bounces", item.totals.bounced_hard / item.totals.sent))
    if not found:
        return None
    return max(found, key=lambda w: (w.level == "danger", w.what == "complaints", w.rate))


def warning_for(workspace: Workspace) -> Warning | None:
    """The warning of the banner, from the cache (one query per workspace every five minutes;
    the ProviderDay refresh clears it)."""
    key = _warning_key(workspace.pk)
    try:
        cached = cache.get(key)
    except Exception:  # the banner must never break a page
        logger.warning("cache unavailable for the deliverability warning", exc_info=True)
        cached = None
    if cached is not None:
        return Warning(*cached) if cached else None
    warning = warning_compute(workspace=workspace)
    value = (warning.level, warning.provider, warning.what, warning.rate) if warning else ()
    try:
        cache.set(key, value, _WARNING_CACHE_SECONDS)
    except Exception:
        logger.warning("cache unavailable for the deliverability warning", exc_info=True)
    return warning
