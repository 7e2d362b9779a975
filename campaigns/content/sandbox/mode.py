"""Which way emails render: through the render plan and the shortcuts that copy Django's nodes
(the default), or through Django's own nodes, filter expressions and filters."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# ESP_RENDER_PLAIN_DJANGO: render through Django's own nodes, filter expressions and filters,
# without the render plan and the shortcuts below that copy them (the budget still holds).
# The reference the shortcuts are tested equal to, and the way out should one ever differ.
plain = bool(getattr(settings, "ESP_RENDER_PLAIN_DJANGO", False))


@receiver(setting_changed)
def _plain_changed(*, setting: str, value: Any, **kwargs: Any) -> None:
    global plain
    if setting == "ESP_RENDER_PLAIN_DJANGO":
        plain = bool(value)


def plain_django() -> bool:
    """Whether emails render the plain Django way (ESP_RENDER_PLAIN_DJANGO)."""
    return plain
