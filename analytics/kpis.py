"""Every number the reports show has its one definition here; the rollup refresh, the
rebuild, the live query the tests compare with, the pages and the API all read it from here.

A message earns *flags* (bits of `Flag`) from what is known about it; every counter is "how
many messages have this flag", so each counts a message at most once however many events it
has (two opens of one message are one unique open). The flags of one MessageEvent row are
`EVENT_FLAGS_SQL`; a message whose `sent_at` is set has SENT.

Which messages: every message except tests ("send test to me": source `test:` or
`data.test`), of every kind (broadcasts, series steps, transactional, others). Which day: the
day it went out (`sent_at`, else `claimed_at`, else `created_at`) in the workspace's zone; all
of a message's later events count on that day.

Money (analytics.attribution says how an order is attributed): *conversions* are the orders
attributed to a message (last touch: a click within the workspace's click window before the
order, else an open by a person within the open window; an order refunded in full is none),
*revenue* their amounts less refunds. They count on the attributed message's day, like its
opens. Conversion rate and revenue per recipient are over the same base as the rates; the
average order value is over conversions. The shop's own *orders* and *order revenue* (every
order, attributed or not, on the day it was placed) give email's share of the revenue.

Rates are over *delivered* — the messages the provider said it delivered — or over *sent*
when the provider reported no delivery at all in the period (SMTP and the outbox report
none): `Totals.rate_base` says which, and the pages say it too. Bounce and delivery rates are
always over sent.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from enum import IntFlag
from typing import Any

from django.utils.translation import gettext_lazy as _

from campaigns.models import MessageEventType


class Flag(IntFlag):
    # Went out: handed to the provider (sent_at set), or the provider reported anything
    # about it (an in-doubt message that was delivered after all).
    SENT = 1
    DELIVERED = 2
    BOUNCED_HARD = 4
    BOUNCED_SOFT = 8
    DEFERRED = 16
    # Opened by a person: a human open or a human click (a reader who blocks images shows by
    # clicking that they opened it, as Message.opened_at does).
    OPENED = 32
    # Opened by anyone, machines included (Apple Mail Privacy Protection, scanners).
    OPENED_ANY = 64
    CLICKED = 128
    # A click that looks automated (a security scanner following every link).
    CLICKED_MACHINE = 256
    COMPLAINED = 512
    UNSUBSCRIBED = 1024


_EVENT_FLAGS: dict[str, tuple[int, int]] = {
    # event type -> (flags of a human event, flags of a machine event)
    MessageEventType.DELIVERED: (Flag.DELIVERED, Flag.DELIVERED),
    MessageEventType.BOUNCED: (Flag.BOUNCED_HARD, Flag.BOUNCED_HARD),
    MessageEventType.SOFT_BOUNCED: (Flag.BOUNCED_SOFT, Flag.BOUNCED_SOFT),
    MessageEventType.DEFERRED: (Flag.DEFERRED, Flag.DEFERRED),
    MessageEventType.COMPLAINED: (Flag.COMPLAINED, Flag.COMPLAINED),
    MessageEventType.UNSUBSCRIBED: (Flag.UNSUBSCRIBED, Flag.UNSUBSCRIBED),
    MessageEventType.OPENED: (Flag.OPENED | Flag.OPENED_ANY, Flag.OPENED_ANY),
    MessageEventType.CLICKED: (Flag.OPENED | Flag.OPENED_ANY | Flag.CLICKED, Flag.OPENED_ANY | Flag.CLICKED_MACHINE),
}


def _event_flags_sql(alias: str) -> str:
    cases = " ".join(
        f"WHEN '{event_type}' THEN CASE WHEN {alias}.is_machine THEN {int(machine)} ELSE {int(human)} END"
        for event_type, (human, machine) in _EVENT_FLAGS.items()
    )
    return f"(CASE {alias}.type {cases} ELSE 0 END | {int(Flag.SENT)})"


# The flags one MessageEvent row (alias `e`) gives its message. Every event means the message
# went out (SENT); a rejection gives nothing else.
EVENT_FLAGS_SQL = _event_flags_sql("e")

# Messages reports leave out (alias `m`): "send test to me" goes to a team member.
TEST_MESSAGE_SQL = "(m.source LIKE 'test:%%' OR m.data @> '{\"test\": true}'::jsonb)"

# The moment a message went out (alias `m`), whose day in the workspace's zone is its day.
SENT_MOMENT_SQL = "coalesce(m.sent_at, m.claimed_at, m.created_at)"


@dataclass(frozen=True)
class Counter:
    name: str
    mask: int
    label: Any
    doc: Any

    def sql(self, flags: str) -> str:
        """1 when the flags (an SQL expression) earn this counter, else 0."""
        return f"(({flags} & {self.mask}) <> 0)::int"

    def of(self, flags: int) -> int:
        return int(bool(flags & self.mask))


COUNTERS: tuple[Counter, ...] = (
    Counter("sent", Flag.SENT, _("Sent"), _("Messages handed to the provider (tests left out).")),
    Counter(
        "delivered",
        Flag.DELIVERED,
        _("Delivered"),
        _("Messages the provider reported delivered to the mailbox."),
    ),
    Counter(
        "bounced",
        Flag.BOUNCED_HARD | Flag.BOUNCED_SOFT,
        _("Bounced"),
        _("Messages that bounced, hard or soft (each counted once)."),
    ),
    Counter(
        "bounced_hard",
        Flag.BOUNCED_HARD,
        _("Hard bounces"),
        _("Messages refused for good (no such mailbox): the address is suppressed."),
    ),
    Counter(
        "bounced_soft",
        Flag.BOUNCED_SOFT,
        _("Soft bounces"),
        _("Messages refused for now (mailbox full, server busy)."),
    ),
    Counter(
        "deferred",
        Flag.DEFERRED,
        _("Deferred"),
        _("Messages the receiving server asked to retry later (they may still be delivered)."),
    ),
    Counter(
        "opened",
        Flag.OPENED,
        _("Unique opens"),
        _("Messages opened by a person at least once (a click counts as an open); machine opens left out."),
    ),
    Counter(
        "opened_all",
        Flag.OPENED_ANY,
        _("Unique opens incl. machine"),
        _("Messages opened at least once by anyone, Apple Mail Privacy Protection and scanners included."),
    ),
    Counter(
        "clicked",
        Flag.CLICKED,
        _("Unique clicks"),
        _("Messages with at least one click by a person; scanner clicks left out."),
    ),
    Counter(
        "clicked_machine",
        Flag.CLICKED_MACHINE,
        _("Scanner clicks"),
        _("Messages whose links a machine followed (security scanners): counted apart, never as clicks."),
    ),
    Counter(
        "complained",
        Flag.COMPLAINED,
        _("Complaints"),
        _("Messages the recipient marked as spam."),
    ),
    Counter(
        "unsubscribed",
        Flag.UNSUBSCRIBED,
        _("Unsubscribes"),
        _("Messages through which the recipient unsubscribed."),
    ),
)
COUNTER_NAMES: tuple[str, ...] = tuple(counter.name for counter in COUNTERS)
# The money columns of the rollups (analytics.attribution writes them).
MONEY_NAMES: tuple[str, ...] = ("conversions", "revenue")


def flags_sql_sum(flags: str, old_flags: str | None = None) -> str:
    """`sum(...) AS <counter>` for every counter, over rows with `flags` (and, for a change,
    minus what `old_flags` had earned)."""
    parts = []
    for counter in COUNTERS:
        change = counter.sql(flags) if old_flags is None else f"{counter.sql(flags)} - {counter.sql(old_flags)}"
        parts.append(f"coalesce(sum({change}), 0) AS {counter.name}")
    return ", ".join(parts)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Totals:
    """The counters of a set of messages and the rates read from them (None where the base
    is zero: no rate, rather than a 0 % that was never measured)."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    deferred: int = 0
    opened: int = 0
    opened_all: int = 0
    clicked: int = 0
    clicked_machine: int = 0
    complained: int = 0
    unsubscribed: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)

    @classmethod
    def of(cls, row: dict[str, Any]) -> Totals:
        return cls(
            **{name: int(row.get(name) or 0) for name in COUNTER_NAMES},
            conversions=int(row.get("conversions") or 0),
            revenue=Decimal(row.get("revenue") or 0),
        )

    def __add__(self, other: Totals) -> Totals:
        return Totals(**{name: getattr(self, name) + getattr(other, name) for name in (*COUNTER_NAMES, *MONEY_NAMES)})

    def counters(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def rate_base(self) -> str:
        """ "delivered", or "sent" when the provider reported no delivery (SMTP, the outbox)."""
        return "delivered" if self.delivered else "sent"

    @property
    def base(self) -> int:
        return self.delivered or self.sent

    @property
    def delivery_rate(self) -> float | None:
        """Delivered ÷ sent (None when nothing was reported delivered: not measured)."""
        return _ratio(self.delivered, self.sent) if self.delivered else None

    @property
    def bounce_rate(self) -> float | None:
        """Bounced (hard or soft) ÷ sent."""
        return _ratio(self.bounced, self.sent)

    @property
    def open_rate(self) -> float | None:
        """Unique human opens ÷ the base (delivered, else sent)."""
        return _ratio(self.opened, self.base)

    @property
    def open_rate_all(self) -> float | None:
        """Unique opens machines included ÷ the base."""
        return _ratio(self.opened_all, self.base)

    @property
    def click_rate(self) -> float | None:
        """Unique human clicks ÷ the base."""
        return _ratio(self.clicked, self.base)

    @property
    def click_to_open(self) -> float | None:
        """Unique human clicks ÷ unique human opens."""
        return _ratio(self.clicked, self.opened)

    @property
    def unsubscribe_rate(self) -> float | None:
        """Unsubscribes ÷ the base."""
        return _ratio(self.unsubscribed, self.base)

    @property
    def complaint_rate(self) -> float | None:
        """Complaints ÷ the base (Gmail and Yahoo want it under 0.10 %, never 0.30 %)."""
        return _ratio(self.complained, self.base)

    @property
    def conversion_rate(self) -> float | None:
        """Conversions ÷ the base (delivered, else sent)."""
        return _ratio(self.conversions, self.base)

    @property
    def revenue_per_recipient(self) -> Decimal | None:
        """Attributed revenue ÷ the base (delivered, else sent)."""
        return (self.revenue / self.base).quantize(Decimal("0.0001")) if self.base else None

    @property
    def average_order_value(self) -> Decimal | None:
        """Attributed revenue ÷ conversions."""
        return (self.revenue / self.conversions).quantize(Decimal("0.01")) if self.conversions else None

    def rates(self) -> dict[str, float | None]:
        return {rate.name: getattr(self, rate.name) for rate in RATES}

    def money(self) -> dict[str, Any]:
        return {measure.name: getattr(self, measure.name) for measure in MONEY}


@dataclass(frozen=True)
class Rate:
    name: str
    label: Any
    doc: Any


RATES: tuple[Rate, ...] = (
    Rate("delivery_rate", _("Delivery rate"), _("Delivered ÷ sent.")),
    Rate("bounce_rate", _("Bounce rate"), _("Bounced (hard or soft) ÷ sent.")),
    Rate("open_rate", _("Open rate"), _("Unique opens by people ÷ delivered (÷ sent when no delivery is reported).")),
    Rate("open_rate_all", _("Open rate incl. machine"), _("Unique opens, machines included ÷ the same base.")),
    Rate(
        "click_rate", _("Click rate"), _("Unique clicks by people ÷ delivered (÷ sent when no delivery is reported).")
    ),
    Rate("click_to_open", _("Click-to-open rate"), _("Unique clicks ÷ unique opens, both by people.")),
    Rate(
        "unsubscribe_rate", _("Unsubscribe rate"), _("Unsubscribes ÷ delivered (÷ sent when no delivery is reported).")
    ),
    Rate("complaint_rate", _("Complaint rate"), _("Complaints ÷ delivered (÷ sent when no delivery is reported).")),
    Rate(
        "conversion_rate",
        _("Conversion rate"),
        _("Conversions ÷ delivered (÷ sent when no delivery is reported)."),
    ),
)


@dataclass(frozen=True)
class Measure:
    """A money figure (a count or an amount in the workspace's currency)."""

    name: str
    label: Any
    doc: Any
    is_amount: bool = True


MONEY: tuple[Measure, ...] = (
    Measure(
        "conversions",
        _("Conversions"),
        _(
            "Orders attributed to these emails: the email the buyer last clicked within the click window before "
            "the order, else the one they last opened within the open window (machine opens and scanner clicks "
            "never count). An order refunded in full is no conversion."
        ),
        is_amount=False,
    ),
    Measure("revenue", _("Attributed revenue"), _("The amounts of those orders, less what was refunded.")),
    Measure(
        "revenue_per_recipient",
        _("Revenue per recipient"),
        _("Attributed revenue ÷ delivered (÷ sent when no delivery is reported)."),
    ),
    Measure("average_order_value", _("Average order value"), _("Attributed revenue ÷ conversions.")),
)


@dataclass(frozen=True)
class ShopTotals:
    """Every order of the shop placed in a period, attributed to an email or not (an order
    refunded in full left out, refunds taken off the revenue)."""

    orders: int = 0
    revenue: Decimal = Decimal(0)

    def email_share(self, attributed: Decimal) -> float | None:
        """Attributed revenue ÷ the shop's revenue (the attributed orders may have been placed
        after the period their emails were sent in, so it is a reading, not a part of a whole)."""
        return float(attributed / self.revenue) if self.revenue else None


SHOP: tuple[Measure, ...] = (
    Measure("orders", _("Orders"), _("Every order placed in the period, attributed or not."), is_amount=False),
    Measure("order_revenue", _("Order revenue"), _("What those orders brought, less refunds.")),
    Measure(
        "email_share",
        _("Email's share of revenue"),
        _("Attributed revenue of the period's emails ÷ the revenue of the period's orders."),
        is_amount=False,
    ),
)


def change(now: float | int | Decimal | None, before: float | int | Decimal | None) -> float | None:
    """The relative change from the previous period (0.25 = +25 %); None without a base."""
    if now is None or before is None or before == 0:
        return None
    return (float(now) - float(before)) / float(before)
