"""Pages and endpoints for recipients, without login, under /e/: open pixel, click redirect,
one-click unsubscribe, preference center, view in browser. Each is addressed by an opaque
signed token; none shows or changes anything of another message."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
