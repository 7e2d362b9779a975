from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        # campaigns plugs into audiences through its registries (audiences never imports it).
        from campaigns import contact_deletion, engagement, gdpr

        engagement.register()  # the segment condition kind "engagement"
        gdpr.register()  # the contact's messages in GDPR export and erasure
        contact_deletion.register()  # messages keep their rows when contacts go in bulk

        from campaigns.broadcasts.gate import broadcast_messages_gate
        from campaigns.delivery import gates
        from campaigns.models import SourceKind

        gates.register(SourceKind.BROADCAST, broadcast_messages_gate)  # a cancel stops stragglers too
