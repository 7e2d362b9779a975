from __future__ import annotations

from django.urls import include, path

from esp.api import views

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path("me", views.WhoAmIView.as_view(), name="api-me"),
    path("outbox/messages", views.OutboxMessageListView.as_view(), name="api-outbox-list"),
    path("outbox/messages/<int:message_id>", views.OutboxMessageDetailView.as_view(), name="api-outbox-detail"),
    # By name, so that esp does not import the apps above it (see the import-linter layers).
    path("", include("audiences.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("automations.api.urls")),
    path("", include("analytics.api.urls")),
]
