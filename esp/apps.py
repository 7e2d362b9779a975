from __future__ import annotations

from django.apps import AppConfig


class EspConfig(AppConfig):
    name = "esp"
    verbose_name = "Mini ESP"

    def ready(self) -> None:
        # Bind @shared_task to the project's Celery app in every Django process (web, tests).
        from esp import (
            celery,  # noqa: F401
            checks,  # noqa: F401  (registers the system checks)
        )
        from esp.api import strict

        strict.install()
