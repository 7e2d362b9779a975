"""Provider webhooks under /webhooks/<provider token>/<esp>/tracking/ (see campaigns.webhooks)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from campaigns.webhooks.views import provider_tracking_webhook

urlpatterns: list[URLPattern | URLResolver] = [
    path("<str:webhook_token>/<str:kind>/tracking/", provider_tracking_webhook, name="provider-tracking-webhook"),
]
