"""The Celery app. Settings come from Django settings under the CELERY_ prefix
(esp/settings/base.py documents acks_late and the visibility timeout)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

app = Celery("esp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _check_deployment(**kwargs: Any) -> None:
    from esp.checks import refuse_to_start_without_https

    refuse_to_start_without_https()
