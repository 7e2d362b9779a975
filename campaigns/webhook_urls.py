"""Provider webhooks under /webhooks/<provider token>/<esp>/tracking/ (see campaigns.webhooks)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
