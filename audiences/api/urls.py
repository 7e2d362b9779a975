"""URLs of the audiences API, included under /api/v1/ by esp.api.urls."""

from __future__ import annotations

from django.urls import path

from audiences.api import event_views, segment_views, views

urlpatterns = [
    path("contacts", views.ContactListView.as_view(), name="api-contacts"),
    path("contacts/lookup", views.ContactLookupView.as_view(), name="api-contact-lookup"),
    path("contacts/bulk", views.ContactBulkView.as_view(), name="api-contacts-bulk"),
    path("contacts/<int:contact_id>", views.ContactDetailView.as_view(), name="api-contact"),
    path("contacts/<int:contact_id>/export", views.ContactExportView.as_view(), name="api-contact-export"),
    path("contacts/<int:contact_id>/erase", views.ContactEraseView.as_view(), name="api-contact-erase"),
    path("contacts/<int:contact_id>/events", event_views.ContactEventListView.as_view(), name="api-contact-events"),
    path("events", event_views.EventListView.as_view(), name="api-events"),
    path("segments", segment_views.SegmentListView.as_view(), name="api-segments"),
    path("segments/count", segment_views.SegmentCountView.as_view(), name="api-segments-count"),
    path("segments/<int:segment_id>", segment_views.SegmentDetailView.as_view(), name="api-segment"),
    path("segments/<int:segment_id>/members", segment_views.SegmentMembersView.as_view(), name="api-segment-members"),
    path("lists", views.ListListView.as_view(), name="api-lists"),
    path("lists/<int:list_id>", views.ListDetailView.as_view(), name="api-list"),
    path("lists/<int:list_id>/subscriptions", views.SubscribeView.as_view(), name="api-list-subscribe"),
    path(
        "lists/<int:list_id>/subscriptions/<int:contact_id>",
        views.UnsubscribeView.as_view(),
        name="api-list-unsubscribe",
    ),
    path("custom-fields", views.CustomFieldListView.as_view(), name="api-custom-fields"),
    path("custom-fields/<int:field_id>", views.CustomFieldDetailView.as_view(), name="api-custom-field"),
    path("suppressions", views.SuppressionListView.as_view(), name="api-suppressions"),
    path("suppressions/<int:suppression_id>", views.SuppressionDetailView.as_view(), name="api-suppression"),
]
