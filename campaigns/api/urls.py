"""URLs of the campaigns API, included under /api/v1/ by esp.api.urls."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
