"""The rows a claimed batch needs besides its messages (workspaces, delivery settings, templates,
senders, providers and the tracking fields of its broadcasts), loaded in a few queries and
reused by a drain's next batches while fresh."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db.models import Q

from campaigns.models import Broadcast, DeliverySettings, EmailTemplate, Message, Provider, SenderIdentity
from campaigns.tracking.rules import BroadcastKey, TrackingRules, broadcast_key, broadcast_rules, tracking_rules
from esp.models import Workspace

# How long a drain reuses the workspaces, delivery settings, templates, senders and providers
# it loaded for a batch: an edit reaches a running drain within this long (a drain lasts at
# most a minute; the next one loads them afresh).
LOOKUPS_FRESH_SECONDS = 5.0


@dataclass
class Lookups:
    """The rows a batch needs besides its messages, by id (and the defaults by workspace)."""

    loaded: float  # time.monotonic()
    workspaces: dict[int, Workspace] = field(default_factory=dict)
    settings: dict[int, DeliverySettings] = field(default_factory=dict)
    templates: dict[int, EmailTemplate] = field(default_factory=dict)
    senders: dict[int, SenderIdentity] = field(default_factory=dict)
    default_senders: dict[int, SenderIdentity] = field(default_factory=dict)
    providers: dict[int, Provider] = field(default_factory=dict)
    default_providers: dict[int, Provider | None] = field(default_factory=dict)
    # The tracking fields of the batch's broadcasts (campaigns.tracking.rules).
    broadcasts: dict[BroadcastKey, Broadcast | None] = field(default_factory=dict)

    def tracking(self, message: Message) -> TrackingRules:
        key = broadcast_key(message)
        broadcast = self.broadcasts.get(key) if key is not None else None
        return tracking_rules(self.settings[message.workspace_id], broadcast)

    def serve(self, messages: list[Message]) -> bool:
        """Whether these are fresh and hold every row the messages name."""
        if time.monotonic() - self.loaded > LOOKUPS_FRESH_SECONDS:
            return False
        return all(
            m.workspace_id in self.workspaces
            and (not m.template_id or m.template_id in self.templates)
            and (not m.sender_id or m.sender_id in self.senders)
            and (not m.provider_id or m.provider_id in self.providers)
            and ((key := broadcast_key(m)) is None or key in self.broadcasts)
            for m in messages
        )


def lookups_load(messages: list[Message]) -> Lookups:
    known = Lookups(loaded=time.monotonic())
    workspace_ids = {m.workspace_id for m in messages}
    known.workspaces = Workspace.objects.in_bulk(workspace_ids)
    known.settings = {s.workspace_id: s for s in DeliverySettings.objects.filter(workspace_id__in=workspace_ids)}
    for workspace_id in workspace_ids:
        known.settings.setdefault(workspace_id, DeliverySettings(workspace_id=workspace_id))
    known.templates = EmailTemplate.objects.in_bulk({m.template_id for m in messages if m.template_id})
    templates = known.templates.values()
    sender_ids = {m.sender_id for m in messages if m.sender_id} | {t.sender_id for t in templates if t.sender_id}
    for sender in SenderIdentity.objects.filter(
        Q(pk__in=sender_ids) | Q(workspace_id__in=workspace_ids, is_default=True)
    ):
        known.senders[sender.pk] = sender
        if sender.is_default:
            known.default_senders[sender.workspace_id] = sender
    provider_ids = {m.provider_id for m in messages if m.provider_id} | {
        t.provider_id for t in templates if t.provider_id
    }
    known.providers = Provider.objects.in_bulk(provider_ids)
    # One default at most per workspace (constraint provider_one_default); none means the outbox.
    known.default_providers = dict.fromkeys(workspace_ids)
    for provider in Provider.objects.filter(workspace_id__in=workspace_ids, is_default=True):
        known.default_providers[provider.workspace_id] = provider
    known.broadcasts = broadcast_rules(messages)
    return known
