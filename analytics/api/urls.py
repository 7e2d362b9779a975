"""URLs of the reports API, included under /api/v1/ by esp.api.urls."""

from __future__ import annotations

from django.urls import path

from analytics.api import journey, views

urlpatterns = [
    path("reports/overview", views.OverviewView.as_view(), name="api-reports-overview"),
    path("reports/broadcasts/<int:broadcast_id>", views.BroadcastReportView.as_view(), name="api-reports-broadcast"),
    path("reports/series/<int:series_id>", views.SeriesReportView.as_view(), name="api-reports-series"),
    path("reports/journey", journey.JourneyView.as_view(), name="api-reports-journey"),
    path("reports/cohorts", journey.CohortsView.as_view(), name="api-reports-cohorts"),
    path("reports/goals", journey.GoalsView.as_view(), name="api-reports-goals"),
    path("reports/deliverability", journey.DeliverabilityView.as_view(), name="api-reports-deliverability"),
    path("reports/templates/<int:template_id>", views.TemplateReportView.as_view(), name="api-reports-template"),
]
