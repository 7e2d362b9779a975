"""Pages of broadcasts, under /broadcasts/ (see campaigns.urls)."""

from __future__ import annotations

from django.urls import path

from campaigns.broadcasts import ab_views, actions, views

urlpatterns = [
    path("", views.BroadcastListView.as_view(), name="broadcasts"),
    path("new/", views.BroadcastCreateView.as_view(), name="broadcast-new"),
    path("count/", views.AudienceCountView.as_view(), name="broadcast-count"),
    path("preview/", views.PreviewView.as_view(), name="broadcast-template-preview"),
    path("<int:broadcast_id>/", views.BroadcastView.as_view(), name="broadcast"),
    path("<int:broadcast_id>/edit/", views.BroadcastEditView.as_view(), name="broadcast-edit"),
    path("<int:broadcast_id>/live/", views.BroadcastLiveView.as_view(), name="broadcast-live"),
    path("<int:broadcast_id>/preview/", views.BroadcastPreviewView.as_view(), name="broadcast-preview"),
    path("<int:broadcast_id>/schedule/", actions.ScheduleView.as_view(), name="broadcast-schedule"),
    path("<int:broadcast_id>/unschedule/", actions.UnscheduleView.as_view(), name="broadcast-unschedule"),
    path("<int:broadcast_id>/pause/", actions.PauseView.as_view(), name="broadcast-pause"),
    path("<int:broadcast_id>/resume/", actions.ResumeView.as_view(), name="broadcast-resume"),
    path("<int:broadcast_id>/cancel/", actions.CancelView.as_view(), name="broadcast-cancel"),
    path("<int:broadcast_id>/duplicate/", actions.DuplicateView.as_view(), name="broadcast-duplicate"),
    path("<int:broadcast_id>/test/", actions.SendTestView.as_view(), name="broadcast-test"),
    # The A/B split test of a broadcast (campaigns.broadcasts.ab_views).
    path("<int:broadcast_id>/ab/", ab_views.BroadcastAbView.as_view(), name="broadcast-ab"),
]
