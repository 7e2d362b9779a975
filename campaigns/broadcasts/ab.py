"""Every write to a broadcast's A/B test: set it up (a draft only), snapshot the test group when
the broadcast starts, decide after the wait (the beat), let the marketer pick, send the winner
to the rest.

The test group is a deterministic share of the recipients: ordered by an MD5 of the broadcast
and contact ids, the first `ceil(recipients × test_percent / 100)` are taken and dealt to the
variants in turn (A, B, C, A, B, C, …), so the shares differ by one at most and the same
audience always gives the same groups. The order is worked out once, into a table of the
transaction, and each variant's messages are one INSERT … SELECT from it.

Every message, test or rest, has the broadcast's source `broadcast:<id>`; the unique
(workspace, source, contact) index makes a second message to anyone impossible, so the winner
can never reach the test group (the rest is also chosen as "recipients without a message of
this broadcast", which keeps the count honest).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.utils import translation
from django.utils.translation import gettext as _

from audiences.models import Contact
from campaigns.broadcast_models import (
    AbMetric,
    AbState,
    Broadcast,
    BroadcastStatus,
    BroadcastTest,
    BroadcastVariant,
    WinnerMode,
)
from campaigns.broadcasts.ab_stats import Verdict, figures, verdict
from campaigns.broadcasts.audience import recipients
from campaigns.broadcasts.content import line_problems
from campaigns.delivery.services import Timing, messages_enqueue_timed
from campaigns.models import EmailTemplate, Message, MessageSource, MessageState, SenderIdentity
from esp import clock
from esp.models import Workspace

LETTERS = ("A", "B", "C", "D")
MAX_TEST_PERCENT = 90  # at least a tenth is left for the winner
MAX_WAIT_HOURS = 7 * 24
MAX_SEND_DELAY_HOURS = 48
# While a test is in these states its broadcast is not finished, even with every message sent.
UNDECIDED = (AbState.TESTING, AbState.AWAITING_PICK)
PENDING_STATES = (MessageState.QUEUED, MessageState.CLAIMED, MessageState.SENDING)


@dataclass(frozen=True)
class VariantInput:
    """What differs in one variant; empty or None is the broadcast's own."""

    subject: str = ""
    template: int | None = None
    sender: int | None = None
    send_delay_hours: int = 0
    preheader: str = ""


@dataclass(frozen=True)
class AbInput:
    variants: list[VariantInput]
    test_percent: int = 20
    metric: str = AbMetric.OPENS
    wait_hours: int = 4
    winner_mode: str = WinnerMode.AUTOMATIC


def _clean_variant(workspace: Workspace, letter: str, data: VariantInput, errors: dict[str, list[str]]) -> None:
    key = f"variants.{letter}"
    for part, problem in line_problems(subject=data.subject, preheader=data.preheader).items():
        errors.setdefault(key, []).append(f"{_('Subject') if part == 'subject' else _('Preheader')}: {problem}")
    if (
        data.template is not None
        and not EmailTemplate.objects.in_workspace(workspace).filter(pk=data.template).exists()
    ):
        errors.setdefault(key, []).append(_("No such email: %(id)s.") % {"id": data.template})
    if data.sender is not None and not SenderIdentity.objects.in_workspace(workspace).filter(pk=data.sender).exists():
        errors.setdefault(key, []).append(_("No such sender: %(id)s.") % {"id": data.sender})
    if not 0 <= data.send_delay_hours <= MAX_SEND_DELAY_HOURS:
        errors.setdefault(key, []).append(
            _("Send a variant later by 0 to %(max)d hours.") % {"max": MAX_SEND_DELAY_HOURS}
        )


def _clean(workspace: Workspace, data: AbInput) -> dict[str, VariantInput]:
    errors: dict[str, list[str]] = {}
    if not 2 <= len(data.variants) <= len(LETTERS):
        raise ValidationError({"variants": [_("A test has 2 to 4 variants.")]})
    variants = {
        letter: dataclasses.replace(v, subject=v.subject.strip(), preheader=v.preheader.strip())
        for letter, v in zip(LETTERS, data.variants, strict=False)
    }
    for letter, variant in variants.items():
        _clean_variant(workspace, letter, variant, errors)
    seen: dict[VariantInput, str] = {}
    for letter, variant in variants.items():
        if variant in seen:
            errors.setdefault(f"variants.{letter}", []).append(
                _(
                    "Variants %(first)s and %(second)s are the same: change the subject, preheader, email, sender "
                    "or send time."
                )
                % {"first": seen[variant], "second": letter}
            )
        seen.setdefault(variant, letter)
    if not 1 <= data.test_percent <= MAX_TEST_PERCENT:
        errors["test_percent"] = [_("The test group is 1 to %(max)d %% of the recipients.") % {"max": MAX_TEST_PERCENT}]
    if data.metric not in AbMetric.values:
        errors["metric"] = [_("Expected one of: %(allowed)s.") % {"allowed": ", ".join(AbMetric.values)}]
    if not 1 <= data.wait_hours <= MAX_WAIT_HOURS:
        errors["wait_hours"] = [_("Wait 1 to %(max)d hours.") % {"max": MAX_WAIT_HOURS}]
    if data.winner_mode not in WinnerMode.values:
        errors["winner_mode"] = [_("Expected one of: %(allowed)s.") % {"allowed": ", ".join(WinnerMode.values)}]
    if errors:
        raise ValidationError(errors)
    return variants


def _draft(workspace: Workspace, broadcast_id: int) -> Broadcast:
    broadcast = Broadcast.objects.select_for_update().get(workspace=workspace, pk=broadcast_id)
    if broadcast.status != BroadcastStatus.DRAFT:
        raise ValidationError({"status": [_("A test can be set up or removed only while the broadcast is a draft.")]})
    return broadcast


@transaction.atomic
def ab_configure(*, workspace: Workspace, broadcast_id: int, data: AbInput) -> BroadcastTest:
    """Set up (or replace) the broadcast's test: its variants lettered A, B, … in order."""
    broadcast = _draft(workspace, broadcast_id)
    variants = _clean(workspace, data)
    BroadcastVariant.objects.filter(workspace=workspace, broadcast=broadcast).delete()
    BroadcastVariant.objects.bulk_create(
        BroadcastVariant(
            workspace=workspace,
            broadcast=broadcast,
            letter=letter,
            subject=variant.subject,
            preheader=variant.preheader,
            template_id=variant.template,
            sender_id=variant.sender,
            send_delay_hours=variant.send_delay_hours,
        )
        for letter, variant in variants.items()
    )
    test, _created = BroadcastTest.objects.update_or_create(
        workspace=workspace,
        broadcast=broadcast,
        defaults={
            "test_percent": data.test_percent,
            "metric": data.metric,
            "wait_hours": data.wait_hours,
            "winner_mode": data.winner_mode,
        },
    )
    return test


@transaction.atomic
def ab_remove(*, workspace: Workspace, broadcast_id: int) -> None:
    """The broadcast goes back to one email for everyone."""
    broadcast = _draft(workspace, broadcast_id)
    BroadcastVariant.objects.filter(workspace=workspace, broadcast=broadcast).delete()
    BroadcastTest.objects.filter(workspace=workspace, broadcast=broadcast).delete()


def ab_copy(original: Broadcast, copy: Broadcast) -> None:
    """A duplicated broadcast gets the same test, not started (its figures stay the original's)."""
    test = BroadcastTest.objects.filter(broadcast=original).first()
    if test is None:
        return
    BroadcastTest.objects.create(
        workspace=copy.workspace, broadcast=copy, test_percent=test.test_percent, metric=test.metric,
        wait_hours=test.wait_hours, winner_mode=test.winner_mode,
    )  # fmt: skip
    BroadcastVariant.objects.bulk_create(
        BroadcastVariant(
            workspace=copy.workspace,
            broadcast=copy,
            letter=v.letter,
            subject=v.subject,
            preheader=v.preheader,
            template_id=v.template_id,
            sender_id=v.sender_id,
            send_delay_hours=v.send_delay_hours,
        )
        for v in BroadcastVariant.objects.filter(broadcast=original)
    )


def has_test(broadcast: Broadcast) -> bool:
    return BroadcastTest.objects.filter(workspace_id=broadcast.workspace_id, broadcast=broadcast).exists()


def _source(broadcast: Broadcast) -> str:
    return str(MessageSource.broadcast(broadcast.pk))


def _delayed(timing: Timing, hours: int) -> Timing:
    if not hours:
        return timing
    shift = dt.timedelta(hours=hours)
    return dataclasses.replace(
        timing, start=timing.start + shift, local=timing.local + shift if timing.local is not None else None
    )


def snapshot_test_group(broadcast: Broadcast, timing: Timing, template: EmailTemplate) -> int:
    """At the broadcast's start, instead of everyone: the test group, each variant its share
    with its content and `data = {"variant": letter}`. Returns the messages made. Runs inside
    the start's transaction (the group's table lives until its commit)."""
    assert connection.in_atomic_block
    test = BroadcastTest.objects.select_for_update().get(workspace_id=broadcast.workspace_id, broadcast=broadcast)
    variants = list(
        BroadcastVariant.objects.filter(workspace_id=broadcast.workspace_id, broadcast=broadcast).select_related(
            "template", "sender"
        )
    )
    workspace = broadcast.workspace
    ids_sql, ids_params = recipients(workspace, broadcast).order_by().values("pk").query.sql_with_params()
    group_table = f"ab_test_group_{int(broadcast.pk)}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {group_table}")
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE {group_table} ON COMMIT DROP AS
            SELECT id, mod(place - 1, %s) AS variant FROM (
                SELECT r.id, row_number() OVER (ORDER BY md5(%s || r.id::text), r.id) AS place,
                       count(*) OVER () AS total
                FROM ({ids_sql}) AS r (id)
            ) ranked
            WHERE place <= ceil(total * %s / 100.0)
            """,  # noqa: S608 — a table name made of an int, Django's compilation of a queryset; values are parameters
            [len(variants), f"ab:{broadcast.pk}:", *ids_params, test.test_percent],
        )
    made = 0
    for index, variant in enumerate(variants):
        content = variant.template or template
        made += messages_enqueue_timed(
            workspace=workspace,
            source=_source(broadcast),
            contacts=Contact.objects.filter(
                workspace_id=workspace.pk,
                pk__in=RawSQL(f"SELECT id FROM {group_table} WHERE variant = %s", [index]),  # noqa: S608, S611 — see above
            ),
            template=content,
            timing=_delayed(timing, variant.send_delay_hours),
            message_class=content.message_class,
            priority=broadcast.priority,
            subject_override=variant.subject or broadcast.subject,
            preheader_override=variant.preheader or broadcast.preheader,
            provider=broadcast.provider,
            sender=variant.sender or broadcast.sender,
            data={"variant": variant.letter},
        )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {group_table}")
        cursor.execute(
            "SELECT max(due_at) FROM campaigns_message WHERE workspace_id = %s AND source = %s",
            [workspace.pk, _source(broadcast)],
        )
        last_due = cursor.fetchone()[0]  # type: ignore[index]
    test.state = AbState.TESTING
    test.decide_after = max(last_due or timing.start, timing.start) + dt.timedelta(hours=test.wait_hours)
    test.save(update_fields=["state", "decide_after"])
    return made


def _send_rest(test: BroadcastTest, broadcast: Broadcast, letter: str, now: dt.datetime) -> int:
    """The winner to every recipient who has no message of this broadcast yet."""
    variant = BroadcastVariant.objects.select_related("template", "sender").get(broadcast=broadcast, letter=letter)
    assert broadcast.template_id is not None  # the broadcast started: it had its email
    template = variant.template or EmailTemplate.objects.get(pk=broadcast.template_id)
    already = Message.objects.filter(
        workspace_id=broadcast.workspace_id, source=_source(broadcast), contact=OuterRef("pk")
    )
    made = messages_enqueue_timed(
        workspace=broadcast.workspace,
        source=_source(broadcast),
        contacts=recipients(broadcast.workspace, broadcast).filter(~Exists(already)),
        template=template,
        timing=Timing(
            start=now, spread=dt.timedelta(hours=broadcast.throttle_hours) if broadcast.throttle_hours else None
        ),
        message_class=template.message_class,
        priority=broadcast.priority,
        subject_override=variant.subject or broadcast.subject,
        preheader_override=variant.preheader or broadcast.preheader,
        provider=broadcast.provider,
        sender=variant.sender or broadcast.sender,
        data={"variant": letter, "rest": True},
    )
    broadcast.recipients += made
    broadcast.save(update_fields=["recipients"])
    return made


def _letters(broadcast: Broadcast) -> list[str]:
    return list(BroadcastVariant.objects.filter(broadcast=broadcast).values_list("letter", flat=True))


def current_verdict(test: BroadcastTest, letters: list[str]) -> Verdict:
    return verdict(figures(test=test, letters=letters), test.metric)


def _decide(
    test: BroadcastTest, broadcast: Broadcast, letter: str, found: Verdict, now: dt.datetime, picked_by: Any = None
) -> None:
    sent = _send_rest(test, broadcast, letter, now)
    values = {"winner": letter, "n": sent}
    # Kept in the workspace's language: it is the record of why, read later by anyone.
    with translation.override(broadcast.workspace.language or None):
        if picked_by is not None:
            action = _("%(user)s picked %(winner)s; it was sent to the other %(n)d recipients.") % {
                **values, "user": picked_by.email}  # fmt: skip
            reason = _("%(action)s At that moment: %(figures)s") % {"action": action, "figures": found.words}
        elif found.leader and found.significant:
            reason = found.words + " " + _("%(winner)s was sent to the other %(n)d recipients.") % values
        elif found.leader:
            reason = found.words + " " + _(
                "%(winner)s, the leader, was sent to the other %(n)d recipients all the same: the test was "
                "set to decide automatically."
            ) % values  # fmt: skip
        else:
            reason = found.words + " " + _(
                "%(winner)s, the first variant, was sent to the other %(n)d recipients, as none did better."
            ) % values  # fmt: skip
    test.state = AbState.DECIDED
    test.winner = letter
    test.confidence = found.confidence
    test.decided_at = now
    test.decided_by = picked_by
    test.decision_reason = reason
    test.rest_recipients = sent
    test.save()


def ab_tick(now: dt.datetime | None = None) -> dict[str, int]:
    """The beat: decide the tests whose wait is over — every test message sent, and `wait_hours`
    passed since the last one went. Automatic tests send the winner to the rest; manual ones
    wait for the marketer's pick. A paused broadcast waits for its resume; a cancelled one's
    test is closed undecided."""
    now = now or clock.now()
    closed = BroadcastTest.objects.filter(state__in=UNDECIDED, broadcast__status=BroadcastStatus.CANCELLED).update(
        state=AbState.CANCELLED
    )
    decided = awaiting = 0
    due = BroadcastTest.objects.filter(state=AbState.TESTING, decide_after__lte=now)
    for broadcast_id in due.values_list("broadcast_id", flat=True):
        with transaction.atomic():
            # The broadcast first, as pause and cancel lock it: the rest is never made beside them.
            broadcast = (
                Broadcast.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("workspace", "provider", "sender")
                .filter(pk=broadcast_id, status=BroadcastStatus.SENDING)
                .first()
            )
            if broadcast is None:
                continue
            test = BroadcastTest.objects.select_for_update().get(broadcast=broadcast)
            if test.state != AbState.TESTING or not _wait_is_over(test, broadcast, now):
                continue
            letters = _letters(broadcast)
            found = current_verdict(test, letters)
            if test.winner_mode == WinnerMode.MANUAL:
                test.state = AbState.AWAITING_PICK
                test.save(update_fields=["state"])
                awaiting += 1
                continue
            _decide(test, broadcast, found.leader or letters[0], found, now)
            decided += 1
    return {"ab_decided": decided, "ab_awaiting_pick": awaiting, "ab_closed": closed}


def _wait_is_over(test: BroadcastTest, broadcast: Broadcast, now: dt.datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bool_or(state = ANY(%s)), max(sent_at) FROM campaigns_message WHERE workspace_id = %s "
            "AND source = %s",
            [list(PENDING_STATES), broadcast.workspace_id, _source(broadcast)],
        )
        pending, last_sent = cursor.fetchone()  # type: ignore[misc]
    return not pending and (last_sent is None or last_sent + dt.timedelta(hours=test.wait_hours) <= now)


@transaction.atomic
def ab_pick(*, workspace: Workspace, broadcast_id: int, letter: str, user: Any) -> BroadcastTest:
    """The marketer's pick (a test that waits for one): the winner goes to the rest now."""
    broadcast = (
        Broadcast.objects.select_for_update(of=("self",))
        .select_related("workspace", "provider", "sender")
        .get(workspace=workspace, pk=broadcast_id)
    )
    test = BroadcastTest.objects.select_for_update().filter(workspace=workspace, broadcast=broadcast).first()
    if test is None:
        raise ValidationError({"broadcast": [_("This broadcast has no A/B test.")]})
    if test.winner_mode != WinnerMode.MANUAL:
        raise ValidationError({"winner": [_("This test chooses its winner automatically.")]})
    if test.state not in UNDECIDED:
        raise ValidationError({"winner": [_("A winner can be picked once the test group is sent, and only once.")]})
    if broadcast.status != BroadcastStatus.SENDING:
        raise ValidationError({"status": [_("Resume the broadcast first: a winner goes out only while it sends.")]})
    letters = _letters(broadcast)
    if letter not in letters:
        raise ValidationError({"winner": [_("Expected one of: %(allowed)s.") % {"allowed": ", ".join(letters)}]})
    now = clock.now()
    _decide(test, broadcast, letter, current_verdict(test, letters), now, picked_by=user)
    return test
