"""Report pages, under /reports/ (included by esp.urls by dotted name)."""

from __future__ import annotations

from django.urls import path

from analytics import journey_views, source_views, views

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
    path("attribution/", source_views.AttributionSettingsView.as_view(), name="reports-attribution"),
    # One broadcast's, series' or template's report, its CSV files, and the money fragments
    # the broadcast's and the series' own pages load by URL.
    path("broadcasts/<int:broadcast_id>/", source_views.SourceReportView.as_view(kind="broadcast"),
         name="reports-broadcast"),
    path("broadcasts/<int:broadcast_id>/export/", source_views.SourceExportView.as_view(kind="broadcast"),
         name="reports-broadcast-export"),
    path("broadcasts/<int:broadcast_id>/money/", source_views.MoneyPartialView.as_view(kind="broadcast"),
         name="reports-broadcast-money"),
    path("series/<int:series_id>/", source_views.SourceReportView.as_view(kind="series"), name="reports-series"),
    path("series/<int:series_id>/export/", source_views.SourceExportView.as_view(kind="series"),
         name="reports-series-export"),
    path("series/<int:series_id>/money/", source_views.MoneyPartialView.as_view(kind="series"),
         name="reports-series-money"),
    path("templates/<int:template_id>/", source_views.SourceReportView.as_view(kind="template"),
         name="reports-template"),
    path("templates/<int:template_id>/export/", source_views.SourceExportView.as_view(kind="template"),
         name="reports-template-export"),
]  # fmt: skip
