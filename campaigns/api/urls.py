"""URLs of the campaigns API, included under /api/v1/ by esp.api.urls."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from campaigns.api import broadcast_views as b
from campaigns.api import views as delivery_views
from campaigns.content import api as content_api

urlpatterns: list[URLPattern | URLResolver] = [
    path("messages", delivery_views.MessageSendView.as_view(), name="api-messages"),
    path("messages/<int:email_id>", delivery_views.MessageDetailView.as_view(), name="api-message"),
]

# Email templates.
urlpatterns += [path("templates", content_api.TemplateListView.as_view(), name="api-templates")]
urlpatterns += [path("templates/<int:template_id>", content_api.TemplateDetailView.as_view(), name="api-template")]

# Broadcasts.
urlpatterns += [
    path("broadcasts", b.BroadcastListView.as_view(), name="api-broadcasts"),
    path("broadcasts/<int:broadcast_id>", b.BroadcastDetailView.as_view(), name="api-broadcast"),
    path("broadcasts/<int:broadcast_id>/audience", b.BroadcastAudienceView.as_view(), name="api-broadcast-audience"),
    path("broadcasts/<int:broadcast_id>/schedule", b.BroadcastScheduleView.as_view(), name="api-broadcast-schedule"),
    path(
        "broadcasts/<int:broadcast_id>/unschedule",
        b.BroadcastUnscheduleView.as_view(),
        name="api-broadcast-unschedule",
    ),
    path("broadcasts/<int:broadcast_id>/pause", b.BroadcastPauseView.as_view(), name="api-broadcast-pause"),
    path("broadcasts/<int:broadcast_id>/resume", b.BroadcastResumeView.as_view(), name="api-broadcast-resume"),
    path("broadcasts/<int:broadcast_id>/cancel", b.BroadcastCancelView.as_view(), name="api-broadcast-cancel"),
    path(
        "broadcasts/<int:broadcast_id>/duplicate",
        b.BroadcastDuplicateView.as_view(),
        name="api-broadcast-duplicate",
    ),
    path("broadcasts/<int:broadcast_id>/test", b.BroadcastTestView.as_view(), name="api-broadcast-test"),
]
