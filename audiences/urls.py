from __future__ import annotations

from django.urls import path

from audiences import views
from audiences.events import views as event_views
from audiences.insights import views as insight_views
from audiences.jobs import views as job_views
from audiences.segments import views as segment_views

urlpatterns = [
    path("contacts/", views.ContactsView.as_view(), name="contacts"),
    path("contacts/bulk/<int:bulk_job_id>/", views.ContactsBulkJobView.as_view(), name="contacts-bulk-job"),
    path("contacts/new/", views.ContactCreateView.as_view(), name="contact-create"),
    path("contacts/<int:contact_id>/", views.ContactView.as_view(), name="contact"),
    path(
        "contacts/<int:contact_id>/subscriptions/", views.ContactSubscriptionView.as_view(), name="contact-subscription"
    ),
    path("contacts/<int:contact_id>/delete/", views.ContactDeleteView.as_view(), name="contact-delete"),
    path("contacts/<int:contact_id>/events/", event_views.ContactEventsView.as_view(), name="contact-events"),
    path("events/", event_views.EventsView.as_view(), name="events"),
    path("overview/", views.AudienceOverviewView.as_view(), name="overview-audience"),
    path("rfm/", insight_views.RfmView.as_view(), name="rfm"),
    path("rfm/segment/", insight_views.RfmSegmentView.as_view(), name="rfm-segment"),
    path("lifecycle/", insight_views.LifecycleView.as_view(), name="lifecycle"),
    path("lifecycle/segment/", insight_views.LifecycleSegmentView.as_view(), name="lifecycle-segment"),
    path("segments/", segment_views.SegmentsView.as_view(), name="segments"),
    path("segments/new/", segment_views.SegmentCreateView.as_view(), name="segment-create"),
    path("segments/preview/", segment_views.SegmentPreviewView.as_view(), name="segment-preview"),
    path("segments/<int:segment_id>/", segment_views.SegmentView.as_view(), name="segment"),
    path("segments/<int:segment_id>/edit/", segment_views.SegmentEditView.as_view(), name="segment-edit"),
    path("segments/<int:segment_id>/refresh/", segment_views.SegmentRefreshView.as_view(), name="segment-refresh"),
    path("segments/<int:segment_id>/delete/", segment_views.SegmentDeleteView.as_view(), name="segment-delete"),
    path("lists/", views.ListsView.as_view(), name="lists"),
    path("lists/<int:list_id>/", views.ListEditView.as_view(), name="list-edit"),
    path("fields/", views.CustomFieldsView.as_view(), name="custom-fields"),
    path("fields/<int:field_id>/delete/", views.CustomFieldDeleteView.as_view(), name="custom-field-delete"),
    path("suppressions/", views.SuppressionsView.as_view(), name="suppressions"),
    path("suppressions/<int:suppression_id>/lift/", views.SuppressionLiftView.as_view(), name="suppression-lift"),
    path("imports/", job_views.ImportsView.as_view(), name="imports"),
    path("imports/<int:import_id>/", job_views.ImportView.as_view(), name="import"),
    path("imports/<int:import_id>/errors.csv", job_views.ImportErrorsView.as_view(), name="import-errors"),
    path("exports/", job_views.ExportsView.as_view(), name="exports"),
    path("exports/<int:export_id>/download/", job_views.ExportDownloadView.as_view(), name="export-download"),
]
