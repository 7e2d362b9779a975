from __future__ import annotations

from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"

    def ready(self) -> None:
        # automations hears audiences through its hook registry (audiences never imports it).
        from automations import subscriptions, trigger_kinds

        trigger_kinds.register()
        subscriptions.register()
