from __future__ import annotations

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self) -> None:
        # The send loop tells which messages it settled; the rollup refresh reads them from
        # there instead of scanning the send log (analytics.rollups says why).
        from analytics import attribution, subscriptions

        subscriptions.register()
        # A rebuild of the rollups rebuilds the attribution of its period too.
        attribution.register()
