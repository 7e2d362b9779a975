from __future__ import annotations

from django.apps import AppConfig


class EspConfig(AppConfig):
    name = "esp"
    verbose_name = "Mini ESP"
