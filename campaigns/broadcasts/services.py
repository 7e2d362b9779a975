"""Every write to broadcasts: compose (draft only), schedule, start (the snapshot), pause, resume,
cancel, duplicate, and the beat's tick that starts what fell due and closes what is done.

States: draft → scheduled → sending → sent; sending ⇄ paused; scheduled, sending or paused →
cancelled. Pausing moves the broadcast's queued messages out of the send loop's reach (their
`due_at` shifted far into the future, by a fixed amount, so resuming shifts them back exactly:
a local-time or spread schedule keeps its shape, and what fell due meanwhile goes at once).
Messages already taken by a worker finish their send. Cancelling settles the queued ones as
skipped with the reason `broadcast_cancelled`: nothing is sent twice, and nothing is left
silently unsent — every recipient's row says what happened to it. A message a worker held at
the pause or cancel that comes back to the queue later (its worker died, a retry) is held or
stopped by the broadcasts' send gate (gate.py) when claimed again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from audiences.models import MailingList, Segment
from campaigns.broadcast_models import Broadcast, BroadcastStatus, SendMode
from campaigns.broadcasts import ab
from campaigns.broadcasts.audience import audience_count, recipients, refresh_statistics
from campaigns.broadcasts.content import line_problems
from campaigns.broadcasts.gate import HELD_AFTER, PAUSE_SHIFT
from campaigns.delivery.services import Timing, messages_enqueue_timed
from campaigns.models import (
    EmailTemplate,
    MessageSource,
    MessageState,
    Provider,
    SenderIdentity,
    SendPriority,
    SkipReason,
)
from campaigns.providers.services import utm_clean
from esp import clock
from esp.models import Workspace

# The earliest zone on Earth (UTC+14): a local-time broadcast is snapshotted when its wall-clock
# time comes there, so nobody's moment has passed when the messages are made.
EARLIEST_OFFSET = dt.timedelta(hours=14)
MAX_THROTTLE_HOURS = 72
EDITABLE = (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)
# BroadcastInput.track_opens / track_clicks: follow the workspace's delivery settings.
WORKSPACE_SETTING = "workspace"


@dataclass(frozen=True)
class BroadcastInput:
    """What a marketer or API client sets; None leaves a field as it is."""

    name: str | None = None
    include_lists: list[int] | None = None
    include_segments: list[int] | None = None
    include_tags: list[str] | None = None
    exclude_lists: list[int] | None = None
    exclude_segments: list[int] | None = None
    exclude_tags: list[str] | None = None
    template: int | None = None
    subject: str | None = None
    preheader: str | None = None
    sender: int | None = None
    provider: int | None = None
    send_mode: str | None = None
    send_at: dt.datetime | None = None
    local_at: dt.datetime | None = None
    throttle_hours: int | None = None
    priority: int | None = None
    # Tracking: None leaves it as it is; for track_*, NOT_SET follows the workspace's settings.
    track_opens: bool | str | None = None
    track_clicks: bool | str | None = None
    utm_parameters: dict[str, str] | None = None


def _ids_of(model: Any, workspace: Workspace, ids: list[int], field: str, errors: dict[str, list[str]]) -> list[int]:
    ids = sorted({int(i) for i in ids})
    found = set(model.objects.in_workspace(workspace).filter(pk__in=ids).values_list("pk", flat=True))
    if missing := [i for i in ids if i not in found]:
        errors.setdefault(field, []).append(_("No such item: %(ids)s.") % {"ids": ", ".join(map(str, missing))})
    return ids


def _tags(values: list[str], field: str, errors: dict[str, list[str]]) -> list[str]:
    tags = sorted({str(v).strip() for v in values if str(v).strip()})
    if any(len(tag) > 64 for tag in tags):
        errors.setdefault(field, []).append(_("A tag has at most 64 characters."))
    return tags


def _clean(workspace: Workspace, data: BroadcastInput, broadcast: Broadcast) -> None:
    """Check `data` and set it on `broadcast` (not saved); a ValidationError names every field."""
    errors: dict[str, list[str]] = {}
    if data.name is not None:
        if not data.name.strip() or len(data.name) > 200:
            errors["name"] = [_("Name the broadcast (at most 200 characters).")]
        broadcast.name = data.name.strip()
    for field, model in (("include_lists", MailingList), ("exclude_lists", MailingList)):
        if getattr(data, field) is not None:
            setattr(broadcast, field, _ids_of(model, workspace, getattr(data, field), field, errors))
    for field in ("include_segments", "exclude_segments"):
        if getattr(data, field) is not None:
            setattr(broadcast, field, _ids_of(Segment, workspace, getattr(data, field), field, errors))
    for field in ("include_tags", "exclude_tags"):
        if getattr(data, field) is not None:
            setattr(broadcast, field, _tags(getattr(data, field), field, errors))
    chosen: tuple[tuple[str, Any], ...] = (
        ("template", EmailTemplate),
        ("sender", SenderIdentity),
        ("provider", Provider),
    )
    for field, model in chosen:
        value = getattr(data, field)
        if value == 0:  # 0: none of its own (the template's or the workspace's default)
            setattr(broadcast, f"{field}_id", None)
        elif value is not None:
            obj = model.objects.in_workspace(workspace).filter(pk=value).first()
            if obj is None:
                errors[field] = [_("No such item: %(ids)s.") % {"ids": value}]
            setattr(broadcast, f"{field}_id", obj.pk if obj else None)
    for part in ("subject", "preheader"):
        text = getattr(data, part)
        if text is not None:
            setattr(broadcast, part, text.strip())
    for part, problem in line_problems(subject=broadcast.subject, preheader=broadcast.preheader).items():
        errors[part] = [problem]
    for switch in ("track_opens", "track_clicks"):
        value = getattr(data, switch)
        if value is not None:
            setattr(broadcast, switch, None if value == WORKSPACE_SETTING else bool(value))
    if data.utm_parameters is not None:
        broadcast.utm_parameters = utm_clean(data.utm_parameters, errors)
    if data.send_mode is not None:
        if data.send_mode not in SendMode.values:
            errors["send_mode"] = [_("Expected one of: %(allowed)s.") % {"allowed": ", ".join(SendMode.values)}]
        broadcast.send_mode = data.send_mode
    if data.send_at is not None:
        broadcast.send_at = data.send_at
    if data.local_at is not None:
        broadcast.local_at = data.local_at.replace(tzinfo=dt.UTC)  # stored as a wall clock
    if data.throttle_hours is not None:
        if not 0 <= data.throttle_hours <= MAX_THROTTLE_HOURS:
            errors["throttle_hours"] = [_("Spread over 1 to %(max)d hours, or 0 for all at once.") % {
                "max": MAX_THROTTLE_HOURS}]  # fmt: skip
        broadcast.throttle_hours = data.throttle_hours or None
    if data.priority is not None:
        if data.priority not in SendPriority.values:
            errors["priority"] = [_("Expected one of: 10 (promotional), 20 (triggered), 30 (transactional).")]
        broadcast.priority = data.priority
    if errors:
        raise ValidationError(errors)


def _check_ready(broadcast: Broadcast, now: dt.datetime) -> None:
    """What scheduling needs besides valid fields: content, an audience, a time to come."""
    errors: dict[str, list[str]] = {}
    if broadcast.template_id is None:
        errors["template"] = [_("Choose the email to send.")]
    if not (broadcast.include_lists or broadcast.include_segments or broadcast.include_tags):
        errors["include_lists"] = [_("Choose who gets it: at least one list, segment or tag.")]
    if broadcast.send_mode == SendMode.AT and (broadcast.send_at is None or broadcast.send_at <= now):
        errors["send_at"] = [_("Choose a moment in the future.")]
    if broadcast.send_mode == SendMode.LOCAL and (
        broadcast.local_at is None or _local_deadline(broadcast) + EARLIEST_OFFSET + dt.timedelta(hours=12) <= now
    ):
        # Past everywhere on Earth (UTC-12 is the latest zone).
        errors["local_at"] = [_("Choose a date and time that has not passed everywhere yet.")]
    if errors:
        raise ValidationError(errors)


def _local_deadline(broadcast: Broadcast) -> dt.datetime:
    """When a local-time broadcast starts: its wall clock reached in UTC+14."""
    assert broadcast.local_at is not None
    return broadcast.local_at.replace(tzinfo=dt.UTC) - EARLIEST_OFFSET


def starts_at(broadcast: Broadcast) -> dt.datetime | None:
    """When the snapshot is taken (the beat starts it then)."""
    if broadcast.send_mode == SendMode.AT:
        return broadcast.send_at
    if broadcast.send_mode == SendMode.LOCAL and broadcast.local_at is not None:
        return _local_deadline(broadcast)
    return None


def _locked(workspace: Workspace, broadcast_id: int) -> Broadcast:
    return Broadcast.objects.select_for_update().get(workspace=workspace, pk=broadcast_id)


@transaction.atomic
def broadcast_create(*, workspace: Workspace, data: BroadcastInput, user: Any = None) -> Broadcast:
    broadcast = Broadcast(workspace=workspace, created_by=user if getattr(user, "is_authenticated", False) else None)
    _clean(workspace, BroadcastInput(**{**data.__dict__, "name": data.name or ""}), broadcast)
    broadcast.save()
    return broadcast


@transaction.atomic
def broadcast_update(*, workspace: Workspace, broadcast_id: int, data: BroadcastInput) -> Broadcast:
    broadcast = _locked(workspace, broadcast_id)
    if broadcast.status not in EDITABLE:
        raise ValidationError({"status": [_("Only a draft or scheduled broadcast can be changed.")]})
    _clean(workspace, data, broadcast)
    if broadcast.status == BroadcastStatus.SCHEDULED:
        _check_ready(broadcast, clock.now())
    broadcast.updated_at = clock.now()
    broadcast.save()
    return broadcast


@transaction.atomic
def broadcast_schedule(*, workspace: Workspace, broadcast_id: int) -> Broadcast:
    """Schedule it; "now" starts it at once (the snapshot is made in this transaction)."""
    broadcast = _locked(workspace, broadcast_id)
    if broadcast.status != BroadcastStatus.DRAFT:
        raise ValidationError({"status": [_("Only a draft can be scheduled.")]})
    now = clock.now()
    _check_ready(broadcast, now)
    broadcast.status = BroadcastStatus.SCHEDULED
    broadcast.updated_at = now
    broadcast.save(update_fields=["status", "updated_at"])
    if broadcast.send_mode == SendMode.NOW:
        _start(broadcast, now)
    return broadcast


@transaction.atomic
def broadcast_unschedule(*, workspace: Workspace, broadcast_id: int) -> Broadcast:
    broadcast = _locked(workspace, broadcast_id)
    if broadcast.status != BroadcastStatus.SCHEDULED:
        raise ValidationError({"status": [_("Only a scheduled broadcast can go back to draft.")]})
    broadcast.status = BroadcastStatus.DRAFT
    broadcast.save(update_fields=["status"])
    return broadcast


def _start(broadcast: Broadcast, now: dt.datetime) -> None:
    """The snapshot: one message per recipient, each with its due time."""
    assert broadcast.template_id is not None  # _check_ready saw to it
    template = EmailTemplate.objects.get(pk=broadcast.template_id)
    zone = broadcast.workspace.zone.key
    timing = Timing(
        start=now if broadcast.send_mode == SendMode.NOW else max(broadcast.send_at or now, now),
        local=broadcast.local_at if broadcast.send_mode == SendMode.LOCAL else None,
        zone=zone,
        spread=dt.timedelta(hours=broadcast.throttle_hours) if broadcast.throttle_hours else None,
    )
    refresh_statistics()
    left_out = audience_count(broadcast.workspace, broadcast)
    if ab.has_test(broadcast):  # an A/B test: only its test group now, the rest once decided
        made = ab.snapshot_test_group(broadcast, timing, template)
    else:
        made = messages_enqueue_timed(
            workspace=broadcast.workspace,
            source=str(MessageSource.broadcast(broadcast.pk)),
            contacts=recipients(broadcast.workspace, broadcast),
            template=template,
            timing=timing,
            message_class=template.message_class,
            priority=broadcast.priority,
            subject_override=broadcast.subject,
            preheader_override=broadcast.preheader,
            provider=broadcast.provider,
            sender=broadcast.sender,
        )
    broadcast.status = BroadcastStatus.SENDING
    broadcast.started_at = now
    broadcast.recipients = made
    broadcast.excluded = {"no_consent": left_out.without_consent, "suppressed": left_out.suppressed}
    broadcast.save(update_fields=["status", "started_at", "recipients", "excluded"])


def _hold_queued(broadcast: Broadcast) -> int:
    """Push the broadcast's queued messages PAUSE_SHIFT later (out of the send loop's reach)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_message SET due_at = due_at + %s::interval
            WHERE workspace_id = %s AND source = %s AND state = 'queued'
            """,
            [f"{PAUSE_SHIFT.days} days", broadcast.workspace_id, str(MessageSource.broadcast(broadcast.pk))],
        )
        return cursor.rowcount


def _release_held(broadcast: Broadcast) -> int:
    """Bring the messages a pause (or the send gate, during one) pushed back to their own
    times. Only those: a crashed worker's row put back meanwhile kept its time."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_message SET due_at = due_at - %s::interval,
                reason = CASE WHEN reason = %s THEN '' ELSE reason END
            WHERE workspace_id = %s AND source = %s AND state = 'queued' AND due_at > now() + %s::interval
            """,
            [
                f"{PAUSE_SHIFT.days} days",
                SkipReason.BROADCAST_PAUSED,
                broadcast.workspace_id,
                str(MessageSource.broadcast(broadcast.pk)),
                f"{HELD_AFTER.days} days",
            ],
        )
        return cursor.rowcount


@transaction.atomic
def broadcast_pause(*, workspace: Workspace, broadcast_id: int) -> int:
    """Hold every message not yet taken by a worker; how many were held."""
    broadcast = _locked(workspace, broadcast_id)
    if broadcast.status != BroadcastStatus.SENDING:
        raise ValidationError({"status": [_("Only a broadcast that is sending can be paused.")]})
    held = _hold_queued(broadcast)
    broadcast.status = BroadcastStatus.PAUSED
    broadcast.paused_at = clock.now()
    broadcast.save(update_fields=["status", "paused_at"])
    return held


@transaction.atomic
def broadcast_resume(*, workspace: Workspace, broadcast_id: int) -> int:
    """Put the held messages back at their own times (those now past go at once)."""
    broadcast = _locked(workspace, broadcast_id)
    if broadcast.status != BroadcastStatus.PAUSED:
        raise ValidationError({"status": [_("Only a paused broadcast can be resumed.")]})
    resumed = _release_held(broadcast)
    broadcast.status = BroadcastStatus.SENDING
    broadcast.paused_at = None
    broadcast.save(update_fields=["status", "paused_at"])
    if resumed:
        from campaigns.delivery.services import start_drain

        start_drain()
    return resumed


@transaction.atomic
def broadcast_cancel(*, workspace: Workspace, broadcast_id: int) -> int:
    """Stop it for good: queued messages are settled as skipped (cancelled); how many."""
    broadcast = _locked(workspace, broadcast_id)
    if broadcast.status not in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING, BroadcastStatus.PAUSED):
        raise ValidationError({"status": [_("Only a scheduled, sending or paused broadcast can be cancelled.")]})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_message SET state = 'skipped', reason = 'broadcast_cancelled'
            WHERE workspace_id = %s AND source = %s AND state = 'queued'
            """,
            [broadcast.workspace_id, str(MessageSource.broadcast(broadcast.pk))],
        )
        cancelled = cursor.rowcount
    broadcast.status = BroadcastStatus.CANCELLED
    broadcast.finished_at = clock.now()
    broadcast.save(update_fields=["status", "finished_at"])
    return cancelled


@transaction.atomic
def broadcast_duplicate(*, workspace: Workspace, broadcast_id: int, user: Any = None) -> Broadcast:
    original = Broadcast.objects.get(workspace=workspace, pk=broadcast_id)
    copied = {
        f.name: getattr(original, f.name)
        for f in fields(BroadcastInput)  # type: ignore[arg-type]
        if f.name not in ("template", "sender", "provider")
    }
    copy = Broadcast(
        workspace=workspace,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        template_id=original.template_id,
        sender_id=original.sender_id,
        provider_id=original.provider_id,
        **{**copied, "name": _("%(name)s (copy)") % {"name": original.name}},
    )
    copy.save()
    ab.ab_copy(original, copy)
    return copy


def broadcasts_tick(now: dt.datetime | None = None) -> dict[str, int]:
    """The beat: start scheduled broadcasts whose time came; mark sending ones whose messages
    are all settled as sent. Each broadcast in its own transaction, locked, so two ticks never
    snapshot one broadcast twice."""
    now = now or clock.now()
    started = finished = 0
    for broadcast_id in Broadcast.objects.filter(status=BroadcastStatus.SCHEDULED).values_list("pk", flat=True):
        with transaction.atomic():
            broadcast = (
                Broadcast.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("workspace", "provider", "sender")
                .filter(pk=broadcast_id)
                .first()
            )
            if broadcast is None or broadcast.status != BroadcastStatus.SCHEDULED:
                continue
            moment = starts_at(broadcast)
            if moment is not None and moment <= now:
                _start(broadcast, now)
                started += 1
    decided = ab.ab_tick(now)
    # A broadcast whose test waits for its decision is not finished: the rest is still to come.
    sending = Broadcast.objects.filter(status=BroadcastStatus.SENDING).exclude(ab_test__state__in=ab.UNDECIDED)
    for broadcast in sending.only("pk", "workspace_id"):
        # The send gate may have held a message just as the resume committed (it read "paused"
        # before): that row missed the resume's release and is brought back here.
        _release_held(broadcast)
        source = str(MessageSource.broadcast(broadcast.pk))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM campaigns_message WHERE workspace_id = %s AND source = %s "
                "AND state IN (%s, %s, %s))",
                [broadcast.workspace_id, source, MessageState.QUEUED, MessageState.CLAIMED, MessageState.SENDING],
            )
            pending = cursor.fetchone()[0]  # type: ignore[index]
        if not pending:
            finished += Broadcast.objects.filter(pk=broadcast.pk, status=BroadcastStatus.SENDING).update(
                status=BroadcastStatus.SENT, finished_at=now
            )
    return {"started": started, "finished": finished, **{key: n for key, n in decided.items() if n}}
