"""Workspace pages of content and delivery (login required), included at the site root by
esp.urls: templates under content/, the send log under messages/, sending settings under
settings/sending/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
