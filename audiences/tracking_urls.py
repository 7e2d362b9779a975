"""The tracking API (Segment HTTP spec), included at /v1/ of the site root by esp.urls."""

from __future__ import annotations

from django.urls import path

from audiences.tracking_views import TrackingView

urlpatterns = [
    path(endpoint, TrackingView.as_view(endpoint=endpoint), name=f"tracking-{endpoint}")
    for endpoint in ("identify", "track", "page", "screen", "alias", "group", "batch", "import")
]
