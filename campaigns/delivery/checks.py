"""The checks made at send time (DESIGN rule 6), for a whole claimed batch at once.

An unsubscribe, hard bounce or complaint that commits before the send wins, whatever was true
when the audience was chosen. Each check reads the batch's rows in one query (suppressions by
address hash, subscriptions, the recent sends of the batch's contacts); the verdicts are
written back in at most two statements. What each message class is spared:

- marketing: suppression (any reason), list unsubscribe, missing postal address, quiet hours
  (a delay, not a drop), daily and weekly caps, smart sending (a message that asks for it
  skips a contact mailed within the workspace's window);
- transactional, and tests sent from the editor: only suppression by hard bounce, complaint
  or erasure.

Before all of these, the send gates of higher layers (campaigns.delivery.gates) may stop a
message of their kind: a series step whose contact left the series.

The batch comes in send order: the most important message first (Message.priority), so under
a cap of one a day the transactional or triggered email takes the contact's place and the
promotion is skipped. All times are the engine's clock (esp.clock), which tests move.

Caps and smart sending hold across workers: a batch takes a lease (a row of
campaigns_cap_lease) on each contact whose capped or smart-sending mail it may send, for as long
as it runs, and counts that contact's sends only once it holds the lease. A contact another
worker holds waits a few seconds (its message goes back to the queue), so two workers never
both see "one more is allowed" for the same contact. Leases are rows, not advisory locks: the
batch commits message by message, and behind PgBouncer in transaction pooling a session lock
and its unlock may reach different server connections.
A lease outlives its batch only when the worker died; it expires after CAP_LEASE.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from django.db import connection

from audiences.models import Subscription, SubscriptionStatus, Suppression, SuppressionReason, email_hash
from campaigns.delivery import gates
from campaigns.delivery.retries import retry_plan
from campaigns.models import (
    DeliverySettings,
    Message,
    MessageClass,
    MessageSource,
    MessageState,
    SkipReason,
    SourceKind,
)
from esp.models import Workspace

# Reasons that stop every message, transactional ones and tests included.
HARD_SUPPRESSION = frozenset(
    {
        SuppressionReason.HARD_BOUNCE,
        SuppressionReason.SOFT_BOUNCES,
        SuppressionReason.COMPLAINT,
        SuppressionReason.ERASED,
    }
)
# Rows that count towards a frequency cap: sent, or handed over and possibly sent.
CAP_STATES = (MessageState.SENT, MessageState.SENDING, MessageState.IN_DOUBT)
# How long a message waits when another worker holds its contact's cap lease: that batch ends
# within seconds, and this one's count then includes what it sent.
CAP_BUSY_DELAY = dt.timedelta(seconds=5)
# A batch stops handing over after a minute (claims.LEASE / 2) and a hand-over times out well
# within another: a lease older than this belongs to a dead worker.
CAP_LEASE = dt.timedelta(minutes=3)


def is_test(message: Message) -> bool:
    return MessageSource.parse(message.source).is_test


def is_marketing(message: Message) -> bool:
    """Held to the marketing rules: a marketing message that is not a test from the editor."""
    return message.message_class == MessageClass.MARKETING and not is_test(message)


def recipient(message: Message) -> str:
    """The address a message goes to now. A contact's message follows the contact (its address
    may have changed since the row was made; an erased contact leaves none). Tests and
    transactional mail to an address that has no contact go to the row's own address."""
    if message.contact_id is not None:
        return message.contact.email if message.contact is not None else ""
    source = MessageSource.parse(message.source)
    if source.is_test or source.is_transactional:
        return message.to_email
    return ""


@dataclass
class Verdicts:
    ready: list[Message] = field(default_factory=list)
    # (message id, final state, reason)
    settled: list[tuple[int, str, str]] = field(default_factory=list)
    # (message id, new due_at, reason): back to the queue until quiet hours end, or for a
    # moment while another worker sends to the same capped contact.
    delayed: list[tuple[int, dt.datetime, str]] = field(default_factory=list)
    # Contacts whose cap lease this batch holds (as `holder`): `unlock_caps` when the batch ends.
    cap_locks: list[int] = field(default_factory=list)
    holder: int = 0
    # (message id, new due_at): back to the queue after the retry backoff, one attempt more
    # (a send gate failed: nobody knows yet whether it may go).
    retried: list[tuple[int, dt.datetime]] = field(default_factory=list)


@lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def quiet_hours_end(
    now: dt.datetime, zone: dt.tzinfo, start: dt.time | None, end: dt.time | None
) -> dt.datetime | None:
    """When the quiet window that `now` falls in ends (an aware datetime), or None when `now`
    is outside it. `start` later than `end` wraps midnight (21:00–08:00)."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        if not start <= clock < end:
            return None
        day = local.date()
    elif clock >= start:
        day = local.date() + dt.timedelta(days=1)
    elif clock < end:
        day = local.date()
    else:
        return None
    # Built as a wall-clock time in the zone: across a DST change the window still ends at the
    # clock time people see.
    return dt.datetime.combine(day, end, tzinfo=zone)


def evaluate(
    messages: list[Message],
    *,
    workspaces: dict[int, Workspace],
    settings: dict[int, DeliverySettings],
    now: dt.datetime,
    verdicts: Verdicts,
) -> Verdicts:
    """Sort a claimed batch (in send order) into `verdicts`: messages to send now, messages
    settled as suppressed/skipped, and messages delayed (quiet hours, a capped contact another
    worker is sending to). Takes the batch's cap leases as `verdicts.holder`, a number no other
    batch uses, and notes them in `verdicts` as soon as they are taken, so the caller releases
    them with `unlock_caps` even when this raises; writes nothing else: see `apply`."""
    messages = _gated(messages, now, verdicts)
    addresses = {message.id: recipient(message) for message in messages}

    hashes = {email_hash(address) for address in addresses.values() if address}
    suppressed: dict[tuple[int, str], str] = {}
    if hashes:
        rows = Suppression.objects.filter(
            workspace_id__in={m.workspace_id for m in messages}, email_hash__in=hashes
        ).values_list("workspace_id", "email_hash", "reason")
        suppressed = {(workspace_id, hashed): reason for workspace_id, hashed, reason in rows}

    listed = [m for m in messages if is_marketing(m) and m.mailing_list_id and m.contact_id]
    subscribed: set[tuple[int, int]] = set()
    if listed:
        subscribed = set(
            Subscription.objects.filter(
                mailing_list_id__in={m.mailing_list_id for m in listed},
                contact_id__in={m.contact_id for m in listed},
                status=SubscriptionStatus.SUBSCRIBED,
            ).values_list("mailing_list_id", "contact_id")
        )

    capped = [m for m in messages if is_marketing(m) and m.contact_id and _needs_lease(m, settings[m.workspace_id])]
    recent = _Recent()
    if capped:
        verdicts.cap_locks = _lock_caps({m.contact_id for m in capped if m.contact_id}, verdicts.holder)
        longest = max(settings[m.workspace_id].smart_sending_hours for m in capped)
        recent = _recent_marketing_sends(set(verdicts.cap_locks), now, smart_hours=longest)
    held = set(verdicts.cap_locks)

    for message in messages:
        address = addresses[message.id]
        if not address:
            verdicts.settled.append((message.id, MessageState.SKIPPED, SkipReason.NO_EMAIL))
            continue
        reason = suppressed.get((message.workspace_id, email_hash(address)))
        if reason is not None and (is_marketing(message) or reason in HARD_SUPPRESSION):
            verdicts.settled.append((message.id, MessageState.SUPPRESSED, SkipReason.SUPPRESSED))
            continue
        if not is_marketing(message):
            verdicts.ready.append(message)
            continue
        if message.mailing_list_id and (message.mailing_list_id, message.contact_id) not in subscribed:
            verdicts.settled.append((message.id, MessageState.SKIPPED, SkipReason.UNSUBSCRIBED))
            continue
        workspace = workspaces[message.workspace_id]
        if not workspace.postal_address.strip():
            verdicts.settled.append((message.id, MessageState.SKIPPED, SkipReason.NO_ADDRESS))
            continue
        rules = settings[message.workspace_id]
        if rules.quiet_hours_start is not None and rules.quiet_hours_end is not None:
            contact_zone = message.contact.time_zone if message.contact is not None else ""
            zone = _zone(contact_zone) or _zone(workspace.time_zone) or dt.UTC
            until = quiet_hours_end(now, zone, rules.quiet_hours_start, rules.quiet_hours_end)
            if until is not None:
                verdicts.delayed.append((message.id, until, SkipReason.QUIET_HOURS))
                continue
        contact_id = message.contact_id
        if contact_id is not None and _needs_lease(message, rules):
            if contact_id not in held:
                verdicts.delayed.append((message.id, now + CAP_BUSY_DELAY, ""))
                continue
            # Earlier messages of this batch that pass count as sent: a batch holding three
            # mails for one contact with a cap of two sends two (the two most important).
            if rules.daily_cap is not None and recent.day[contact_id] >= rules.daily_cap:
                verdicts.settled.append((message.id, MessageState.SKIPPED, SkipReason.DAILY_CAP))
                continue
            if rules.weekly_cap is not None and recent.week[contact_id] >= rules.weekly_cap:
                verdicts.settled.append((message.id, MessageState.SKIPPED, SkipReason.WEEKLY_CAP))
                continue
            last = recent.last.get(contact_id)
            window = dt.timedelta(hours=rules.smart_sending_hours)
            if _smart(message, rules) and last is not None and last > now - window:
                verdicts.settled.append((message.id, MessageState.SKIPPED, SkipReason.SMART_SENDING))
                continue
        if contact_id is not None:
            recent.day[contact_id] += 1
            recent.week[contact_id] += 1
            recent.last[contact_id] = now
        verdicts.ready.append(message)
    return verdicts


def _smart(message: Message, rules: DeliverySettings) -> bool:
    return message.smart_sending and rules.smart_sending_hours > 0


def _needs_lease(message: Message, rules: DeliverySettings) -> bool:
    """Whether deciding this marketing message reads the contact's recent sends (a cap or
    smart sending applies), which only the holder of the contact's lease may do."""
    return rules.daily_cap is not None or rules.weekly_cap is not None or _smart(message, rules)


def _gated(messages: list[Message], now: dt.datetime, verdicts: Verdicts) -> list[Message]:
    """Run the send gates; the messages they let through (the others are in `verdicts`)."""
    gated = gates.gates_check(messages, now)
    if not gated.stopped and not gated.failed and not gated.held:
        return messages
    passed = []
    for message in messages:
        if message.id in gated.stopped:
            verdicts.settled.append((message.id, MessageState.SKIPPED, gated.stopped[message.id]))
        elif message.id in gated.held:
            hold = gated.held[message.id]
            verdicts.delayed.append((message.id, hold.until, hold.reason))
        elif message.id in gated.failed:
            state, _reason, due_at = retry_plan(message, gave_up=SkipReason.GATE_ERROR, now=now)
            if state == MessageState.FAILED:
                verdicts.settled.append((message.id, state, SkipReason.GATE_ERROR))
            else:
                verdicts.retried.append((message.id, due_at))
        else:
            passed.append(message)
    return passed


def _lock_caps(contact_ids: set[int], holder: int) -> list[int]:
    """Take the cap lease of each of these contacts that no live batch holds; the ones taken.
    A concurrent batch inserting the same contact waits for this statement's commit and then
    finds the lease taken (ON CONFLICT … WHERE), so a lease has one holder at a time."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO campaigns_cap_lease AS lease (contact_id, holder, expires_at)
            SELECT c, %(holder)s, now() + make_interval(secs => %(lease)s)
            FROM unnest(%(contacts)s::bigint[]) AS c ORDER BY c
            ON CONFLICT (contact_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE lease.expires_at < now()
            RETURNING contact_id
            """,
            {"holder": holder, "lease": CAP_LEASE.total_seconds(), "contacts": sorted(contact_ids)},
        )
        return [row[0] for row in cursor.fetchall()]


def unlock_caps(verdicts: Verdicts) -> None:
    """Release the cap leases the batch took (at its end, once its messages are handed over)."""
    if not verdicts.cap_locks:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM campaigns_cap_lease WHERE contact_id = ANY(%s) AND holder = %s",
            [verdicts.cap_locks, verdicts.holder],
        )
    verdicts.cap_locks = []


@dataclass
class _Recent:
    """A batch's leased contacts' marketing sends: in the last day, the last week, and the
    latest hand-over; the batch adds the messages it lets through."""

    day: Counter[int] = field(default_factory=Counter)
    week: Counter[int] = field(default_factory=Counter)
    last: dict[int, dt.datetime] = field(default_factory=dict)


def _recent_marketing_sends(contact_ids: set[int], now: dt.datetime, *, smart_hours: int = 0) -> _Recent:
    """Marketing messages of these contacts handed over in the last 24 hours and 7 days, and
    the latest (a row in `sending` or `in_doubt` counts from its hand-over time: it may have
    arrived). One query serves caps and smart sending."""
    week = now - dt.timedelta(days=7)
    since = min(week, now - dt.timedelta(hours=smart_hours))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT contact_id,
                   count(*) FILTER (WHERE coalesce(sent_at, claimed_at) > %(day)s),
                   count(*) FILTER (WHERE coalesce(sent_at, claimed_at) > %(week)s),
                   max(coalesce(sent_at, claimed_at))
            FROM campaigns_message
            WHERE contact_id = ANY(%(contacts)s) AND message_class = %(marketing)s AND state = ANY(%(states)s)
              AND source NOT LIKE %(tests)s AND coalesce(sent_at, claimed_at) > %(since)s
            GROUP BY contact_id
            """,
            {
                "contacts": list(contact_ids),
                "marketing": MessageClass.MARKETING,
                "states": list(CAP_STATES),
                "tests": MessageSource.prefix(SourceKind.TEST) + "%",
                "day": now - dt.timedelta(days=1),
                "week": week,
                "since": since,
            },
        )
        recent = _Recent()
        for contact_id, in_day, in_week, last in cursor.fetchall():
            recent.day[contact_id] = in_day
            recent.week[contact_id] = in_week
            recent.last[contact_id] = last
    return recent


def apply(verdicts: Verdicts, *, token: dt.datetime) -> None:
    """Write the settled and delayed verdicts of a batch this worker holds (claimed with
    `token`); a row taken back by recovery in the meantime is left alone."""
    with connection.cursor() as cursor:
        if verdicts.settled:
            ids, states, reasons = zip(*verdicts.settled, strict=True)
            cursor.execute(
                """
                UPDATE campaigns_message m SET state = v.state, reason = v.reason
                FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, state, reason)
                WHERE m.id = v.id AND m.state = 'claimed' AND m.claimed_at = %s
                """,
                [list(ids), list(states), list(reasons), token],
            )
        if verdicts.delayed:
            ids, dues, reasons = zip(*verdicts.delayed, strict=True)
            # Back to the queue with a later due_at: the beat tick picks it up when quiet hours
            # end (DESIGN rule 2: the database holds time).
            cursor.execute(
                """
                UPDATE campaigns_message m SET state = 'queued', due_at = v.due_at, reason = v.reason, claimed_at = NULL
                FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS v(id, due_at, reason)
                WHERE m.id = v.id AND m.state = 'claimed' AND m.claimed_at = %s
                """,
                [list(ids), list(dues), list(reasons), token],
            )
        if verdicts.retried:
            ids, dues = zip(*verdicts.retried, strict=True)
            cursor.execute(
                """
                UPDATE campaigns_message m SET state = 'queued', due_at = v.due_at, reason = '', claimed_at = NULL,
                    attempts = m.attempts + 1
                FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, due_at)
                WHERE m.id = v.id AND m.state = 'claimed' AND m.claimed_at = %s
                """,
                [list(ids), list(dues), token],
            )
