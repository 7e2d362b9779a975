"""Report pages, under /reports/ (included by esp.urls by dotted name)."""

from __future__ import annotations

from django.urls import path

from analytics import journey_views, views

urlpatterns = [
    path("", views.OverviewView.as_view(), name="reports"),
    path("export/", views.ExportView.as_view(), name="reports-export"),
    path("journey/", journey_views.JourneyView.as_view(), name="reports-journey"),
    path("journey/export/", journey_views.JourneyExportView.as_view(), name="reports-journey-export"),
    path("cohorts/", journey_views.CohortsView.as_view(), name="reports-cohorts"),
    path("cohorts/export/", journey_views.CohortsExportView.as_view(), name="reports-cohorts-export"),
    path("goals/", journey_views.GoalsView.as_view(), name="reports-goals"),
    path("goals/export/", journey_views.GoalsExportView.as_view(), name="reports-goals-export"),
    path("goals/new/", journey_views.GoalEditView.as_view(), name="reports-goal-new"),
    path("goals/<int:goal_id>/", journey_views.GoalEditView.as_view(), name="reports-goal"),
    path("goals/<int:goal_id>/delete/", journey_views.GoalDeleteView.as_view(), name="reports-goal-delete"),
    path("deliverability/", journey_views.DeliverabilityView.as_view(), name="reports-deliverability"),
    path(
        "deliverability/export/",
        journey_views.DeliverabilityExportView.as_view(),
        name="reports-deliverability-export",
    ),
    path("digest/", journey_views.DigestView.as_view(), name="reports-digest"),
]
