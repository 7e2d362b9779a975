"""Workspace pages of series (login required), included at the site root by esp.urls."""

from __future__ import annotations

from django.urls import path

from automations import views

urlpatterns = [
    path("series/", views.SeriesListView.as_view(), name="series-list"),
    path("series/new/", views.SeriesCreateView.as_view(), name="series-create"),
    path("series/recipes/", views.RecipesView.as_view(), name="series-recipes"),
    path("series/recipes/<slug:recipe_key>/", views.RecipeView.as_view(), name="series-recipe"),
    path("series/<int:series_id>/", views.SeriesView.as_view(), name="series"),
    path("series/<int:series_id>/steps/", views.SeriesStepsView.as_view(), name="series-steps"),
    path("series/<int:series_id>/builder/", views.SeriesBuilderView.as_view(), name="series-builder"),
    path(
        "series/<int:series_id>/steps/<slug:step_key>/people/",
        views.SeriesStepPeopleView.as_view(),
        name="series-step-people",
    ),
    path("series/<int:series_id>/send-to-me/", views.SeriesSendToMeView.as_view(), name="series-send-to-me"),
    path(
        "series/<int:series_id>/builder/email-preview/",
        views.SeriesEmailPreviewView.as_view(),
        name="series-builder-email-preview",
    ),
    path(
        "series/<int:series_id>/builder/webhook-test/",
        views.SeriesWebhookTestView.as_view(),
        name="series-builder-webhook-test",
    ),
    path("series/<int:series_id>/edit/", views.SeriesEditView.as_view(), name="series-edit"),
    path("series/<int:series_id>/publish/", views.SeriesPublishView.as_view(), name="series-publish"),
    path("series/<int:series_id>/versions/", views.SeriesVersionsView.as_view(), name="series-versions"),
    path("series/<int:series_id>/pause/", views.SeriesPauseView.as_view(), name="series-pause"),
    path("series/<int:series_id>/resume/", views.SeriesResumeView.as_view(), name="series-resume"),
    path("series/<int:series_id>/archive/", views.SeriesArchiveView.as_view(), name="series-archive"),
    path("series/<int:series_id>/dry-run/", views.SeriesDryRunView.as_view(), name="series-dry-run"),
    path(
        "series/<int:series_id>/webhook-secret/",
        views.SeriesWebhookSecretView.as_view(),
        name="series-webhook-secret",
    ),
    path("series/enrollments/<int:enrollment_id>/", views.EnrollmentView.as_view(), name="enrollment"),
    path(
        "series/contacts/<int:contact_id>/enrollments/",
        views.ContactEnrollmentsView.as_view(),
        name="contact-enrollments",
    ),
]
