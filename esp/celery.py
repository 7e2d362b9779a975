"""The Celery app. Settings come from Django settings under the CELERY_ prefix
(esp/settings/base.py documents acks_late and the visibility timeout)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

app = Celery("esp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
