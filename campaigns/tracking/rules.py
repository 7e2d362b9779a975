"""What tracking a message gets: the workspace's delivery settings (opens, clicks, UTM
parameters), where its broadcast has its own, overridden by the broadcast's.

The send loop looks the broadcasts of a batch up once (`broadcast_rules`), view in browser
looks up the one message's (`message_rules`), so both track and re-track with the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from campaigns.broadcast_models import Broadcast
from campaigns.models import DeliverySettings, Message, MessageSource, SourceKind

# (workspace id, broadcast id) -> the broadcast's tracking fields, None when there is no such
# broadcast (benchmarks and tests queue "broadcast:<anything>").
BroadcastKey = tuple[int, int]
_FIELDS = ("workspace_id", "track_opens", "track_clicks", "utm_parameters")


@dataclass(frozen=True)
class TrackingRules:
    """Read by campaigns.tracking.links like DeliverySettings (the same attribute names)."""

    track_opens: bool = True
    track_clicks: bool = True
    utm_parameters: Mapping[str, Any] = field(default_factory=dict)


def tracking_rules(settings: DeliverySettings | None, broadcast: Broadcast | None) -> TrackingRules:
    """The workspace's rules with the broadcast's own on top (None of its own: the workspace's)."""
    base = settings if settings is not None else DeliverySettings()
    utm = dict(base.utm_parameters or {})
    if broadcast is None:
        return TrackingRules(base.track_opens, base.track_clicks, utm)
    utm.update(broadcast.utm_parameters or {})
    return TrackingRules(
        base.track_opens if broadcast.track_opens is None else broadcast.track_opens,
        base.track_clicks if broadcast.track_clicks is None else broadcast.track_clicks,
        utm,
    )


def broadcast_key(message: Message) -> BroadcastKey | None:
    """The broadcast a message is tracked for: its own, or the one a test was sent from."""
    source = MessageSource.parse(message.source)
    if source.kind == SourceKind.TEST:
        tested = (message.data or {}).get("broadcast") if isinstance(message.data, dict) else None
        return (message.workspace_id, tested) if isinstance(tested, int) and not isinstance(tested, bool) else None
    if source.kind != SourceKind.BROADCAST or not source.key.isdigit():
        return None
    return (message.workspace_id, int(source.key))


def broadcast_rules(messages: list[Message]) -> dict[BroadcastKey, Broadcast | None]:
    """The tracking fields of the broadcasts these messages belong to, in one query."""
    keys = {key for message in messages if (key := broadcast_key(message)) is not None}
    if not keys:
        return {}
    found = {
        (row.workspace_id, row.pk): row
        for row in Broadcast.objects.filter(pk__in={pk for _workspace, pk in keys}).only(*_FIELDS)
    }
    return {key: found.get(key) for key in keys}


def message_rules(message: Message) -> TrackingRules:
    """One message's rules (view in browser)."""
    settings = DeliverySettings.objects.filter(workspace_id=message.workspace_id).first()
    key = broadcast_key(message)
    broadcast = broadcast_rules([message]).get(key) if key is not None else None
    return tracking_rules(settings, broadcast)
