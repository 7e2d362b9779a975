"""Reads the broadcast pages need besides the figures of selectors.progress: the composer's
choices, the audience and schedule in words, the review's warnings, the click map and the
skips by reason."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from audiences.models import MailingList, Segment
from audiences.segments.compiler import segment_queryset
from campaigns.broadcast_models import Broadcast, SendMode
from campaigns.broadcasts.audience import recipients
from campaigns.broadcasts.forms import ComposerChoices
from campaigns.models import EmailTemplate, Message, MessageSource, Provider, SenderIdentity, SendPriority, SkipReason
from campaigns.providers.services import delivery_settings_get
from campaigns.tracking.rules import tracking_rules
from esp.models import Workspace

# A first mailing to this many recipients or more gets a warning (a cold list hurts the
# sender's reputation: warm it up with smaller sends).
LARGE_AUDIENCE = 10_000
# The tags the composer offers: at most this many, alphabetically.
TAGS_SHOWN = 300


def workspace_tags(workspace: Workspace, keep: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """The tags the workspace's contacts carry (plus `keep`, the ones a broadcast already names)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT tag FROM audiences_contact, unnest(tags) AS tag
            WHERE workspace_id = %s AND tags <> '{}' ORDER BY tag LIMIT %s
            """,
            [workspace.pk, TAGS_SHOWN],
        )
        found = {row[0] for row in cursor.fetchall()}
    return sorted(found | set(keep))


def composer_choices(workspace: Workspace, broadcast: Broadcast | None = None) -> ComposerChoices:
    keep = (broadcast.include_tags + broadcast.exclude_tags) if broadcast else []
    delivery = delivery_settings_get(workspace)
    return ComposerChoices(
        lists=list(MailingList.objects.in_workspace(workspace).order_by("name").values_list("pk", "name")),
        segments=list(Segment.objects.in_workspace(workspace).order_by("name").values_list("pk", "name")),
        tags=workspace_tags(workspace, keep),
        templates=list(EmailTemplate.objects.in_workspace(workspace).order_by("name").values_list("pk", "name")),
        senders=[
            (s.pk, f"{s.from_name} <{s.from_email}>")
            for s in SenderIdentity.objects.in_workspace(workspace).order_by("from_name", "from_email")
        ],
        providers=list(Provider.objects.in_workspace(workspace).order_by("name").values_list("pk", "name")),
        tracks_opens=delivery.track_opens,
        tracks_clicks=delivery.track_clicks,
    )


@dataclass(frozen=True)
class Names:
    lists: dict[int, str]
    segments: dict[int, str]


def names_for(workspace: Workspace, broadcasts: list[Broadcast]) -> Names:
    """The names of every list and segment the broadcasts name, in two queries."""
    list_ids = {i for b in broadcasts for i in b.include_lists + b.exclude_lists}
    segment_ids = {i for b in broadcasts for i in b.include_segments + b.exclude_segments}
    return Names(
        lists=dict(MailingList.objects.in_workspace(workspace).filter(pk__in=list_ids).values_list("pk", "name")),
        segments=dict(Segment.objects.in_workspace(workspace).filter(pk__in=segment_ids).values_list("pk", "name")),
    )


def _named(ids: list[int], names: dict[int, str]) -> list[str]:
    return [f"“{names[i]}”" if i in names else _("(deleted)") for i in ids]


def _parts(names: Names, lists: list[int], segments: list[int], tags: list[str]) -> str:
    parts = []
    if lists:
        parts.append(_("lists %(names)s") % {"names": ", ".join(_named(lists, names.lists))})
    if segments:
        parts.append(_("segments %(names)s") % {"names": ", ".join(_named(segments, names.segments))})
    if tags:
        parts.append(_("tags %(names)s") % {"names": ", ".join(tags)})
    return "; ".join(parts)


def audience_text(broadcast: Broadcast, names: Names) -> str:
    """ "Lists “Newsletter”; segments “Buyers” — except tags wholesale"."""
    include = _parts(names, broadcast.include_lists, broadcast.include_segments, broadcast.include_tags)
    if not include:
        return _("Nobody chosen yet")
    exclude = _parts(names, broadcast.exclude_lists, broadcast.exclude_segments, broadcast.exclude_tags)
    include = include[0].upper() + include[1:]
    return _("%(include)s — except %(exclude)s") % {"include": include, "exclude": exclude} if exclude else include


def _when(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    return formats.date_format(timezone.localtime(moment, zone), "DATETIME_FORMAT")


def schedule_text(broadcast: Broadcast, workspace: Workspace) -> str:
    zone = workspace.zone
    if broadcast.send_mode == SendMode.AT:
        text = (
            _("At %(moment)s (%(zone)s)") % {"moment": _when(broadcast.send_at, zone), "zone": zone.key}
            if broadcast.send_at
            else _("At a date and time not chosen yet")
        )
    elif broadcast.send_mode == SendMode.LOCAL:
        text = (
            _("At %(moment)s in each contact's time zone (%(zone)s for contacts without one)")
            % {
                "moment": formats.date_format(broadcast.local_at.replace(tzinfo=None), "DATETIME_FORMAT"),
                "zone": zone.key,
            }
            if broadcast.local_at
            else _("At a local time not chosen yet")
        )
    else:
        text = _("As soon as it is scheduled")
    if broadcast.throttle_hours:
        text += " · " + _("spread over %(hours)d h") % {"hours": broadcast.throttle_hours}
    return text


def priority_text(priority: int) -> str:
    return str(SendPriority(priority).label) if priority in SendPriority.values else str(priority)


@dataclass(frozen=True)
class Warning:
    key: str
    text: str


def warnings_for(workspace: Workspace, broadcast: Broadcast, recipient_count: int) -> list[Warning]:
    """What the review points out before sending (none of it stops a schedule; the send road
    itself skips marketing mail without a postal address)."""
    found: list[Warning] = []
    if not workspace.postal_address.strip():
        found.append(
            Warning(
                "postal_address",
                _(
                    "The workspace has no postal address: every marketing email would be skipped. "
                    "Add it in the workspace settings."
                ),
            )
        )
    if recipient_count >= LARGE_AUDIENCE:
        mailed = Message.objects.filter(workspace_id=workspace.pk, contact_id=OuterRef("pk"))
        if not recipients(workspace, broadcast).filter(Exists(mailed)).exists():
            found.append(
                Warning(
                    "cold_audience",
                    _(
                        "%(count)s recipients and none of them was ever mailed from here: a first send "
                        "this large can hurt your sender reputation. Start with a smaller part."
                    )
                    % {"count": formats.number_format(recipient_count, force_grouping=True)},
                )
            )
    for segment in Segment.objects.in_workspace(workspace).filter(pk__in=broadcast.include_segments).order_by("name"):
        if not segment_queryset(workspace=workspace, rules=segment.rules).exists():
            found.append(Warning("empty_segment", _("The segment “%(name)s” is empty now.") % {"name": segment.name}))
    return found


@dataclass(frozen=True)
class LinkClicks:
    url: str
    position: int | None  # the link's place in the email (0 = first); None when not recorded
    clicks: int  # every human click
    clickers: int  # recipients who clicked it


def click_map(workspace: Workspace, broadcast: Broadcast) -> list[LinkClicks]:
    """Clicks per link of the broadcast (machine clicks of link scanners left out), most
    clicked first, in one grouped query."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.url, min((e.details ->> 'link')::int), count(*), count(DISTINCT e.message_id)
            FROM campaigns_messageevent e JOIN campaigns_message m ON m.id = e.message_id
            WHERE m.workspace_id = %s AND m.source = %s AND e.workspace_id = %s
              AND e.type = 'clicked' AND NOT e.is_machine
            GROUP BY e.url ORDER BY 3 DESC, 1 LIMIT 100
            """,
            [workspace.pk, str(MessageSource.broadcast(broadcast.pk)), workspace.pk],
        )
        return [LinkClicks(url, position, clicks, clickers) for url, position, clicks, clickers in cursor.fetchall()]


def skip_reasons(by_reason: dict[str, int]) -> list[tuple[str, int]]:
    """Skipped messages by reason, in words, most first."""
    labels = dict(SkipReason.choices)
    rows = [(str(labels.get(reason, reason or _("No reason recorded"))), n) for reason, n in by_reason.items()]
    return sorted(rows, key=lambda row: -row[1])


def tracking_text(workspace: Workspace, broadcast: Broadcast) -> str:
    """How the broadcast's mail is tracked, the workspace's settings and its own together."""
    rules = tracking_rules(delivery_settings_get(workspace), broadcast)
    parts = [
        _("opens tracked") if rules.track_opens else _("opens not tracked"),
        _("clicks tracked") if rules.track_clicks else _("clicks not tracked"),
    ]
    if rules.track_clicks and rules.utm_parameters:
        utm = ", ".join(f"{key}={value}" for key, value in sorted(rules.utm_parameters.items()))
        parts.append(_("links get %(utm)s") % {"utm": utm})
    return " · ".join(parts)
