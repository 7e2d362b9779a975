"""Report pages, under /reports/ (included by esp.urls by dotted name)."""

from __future__ import annotations

from django.urls import path

from analytics import views

urlpatterns = [
    path("", views.OverviewView.as_view(), name="reports"),
    path("export/", views.ExportView.as_view(), name="reports-export"),
]
