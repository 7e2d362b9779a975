"""Broadcast pages, included by campaigns.urls under broadcasts/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from campaigns.broadcasts import ab_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("<int:broadcast_id>/ab/", ab_views.BroadcastAbView.as_view(), name="broadcast-ab"),
]
