"""URLs of the series API, included under /api/v1/ by esp.api.urls."""

from __future__ import annotations

from django.urls import path

from automations.api import views

urlpatterns = [
    path("series", views.SeriesListView.as_view(), name="api-series-list"),
    path("series/<int:series_id>", views.SeriesDetailView.as_view(), name="api-series"),
    path("series/<int:series_id>/publish", views.SeriesPublishView.as_view(), name="api-series-publish"),
    path(
        "series/<int:series_id>/webhook-secret",
        views.SeriesWebhookSecretView.as_view(),
        name="api-series-webhook-secret",
    ),
    path("series/<int:series_id>/pause", views.SeriesPauseView.as_view(), name="api-series-pause"),
    path("series/<int:series_id>/resume", views.SeriesResumeView.as_view(), name="api-series-resume"),
    path("series/<int:series_id>/archive", views.SeriesArchiveView.as_view(), name="api-series-archive"),
    path("series/<int:series_id>/versions", views.SeriesVersionListView.as_view(), name="api-series-versions"),
    path(
        "series/<int:series_id>/versions/<int:version_number>",
        views.SeriesVersionDetailView.as_view(),
        name="api-series-version",
    ),
    path("series/<int:series_id>/steps", views.SeriesStepsView.as_view(), name="api-series-steps"),
    path("series/<int:series_id>/enrollments", views.SeriesEnrollmentsView.as_view(), name="api-series-enrollments"),
    path("series/<int:series_id>/dry-run", views.SeriesDryRunView.as_view(), name="api-series-dry-run"),
    path("enrollments/<int:enrollment_id>", views.EnrollmentDetailView.as_view(), name="api-enrollment"),
    path("enrollments/<int:enrollment_id>/end", views.EnrollmentEndView.as_view(), name="api-enrollment-end"),
    path(
        "contacts/<int:contact_id>/enrollments",
        views.ContactEnrollmentsView.as_view(),
        name="api-contact-enrollments",
    ),
]
