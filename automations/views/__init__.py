"""Browser pages of series. Viewers read; marketers change. Every write goes through
automations.services (or automations.editing for the builder); another workspace's series,
enrollment or contact is a 404."""

from automations.views.actions import (
    SeriesArchiveView,
    SeriesPauseView,
    SeriesPublishView,
    SeriesResumeView,
    SeriesWebhookSecretView,
)
from automations.views.builder import SeriesBuilderView
from automations.views.panel import SeriesEmailPreviewView, SeriesWebhookTestView
from automations.views.people import SeriesStepPeopleView
from automations.views.preview import SeriesSendToMeView
from automations.views.recipes import RecipesView, RecipeView
from automations.views.series import SeriesCreateView, SeriesEditView, SeriesListView, SeriesStepsView, SeriesView
from automations.views.versions import SeriesVersionsView
from automations.views.watch import ContactEnrollmentsView, EnrollmentView, SeriesDryRunView

__all__ = [
    "ContactEnrollmentsView",
    "EnrollmentView",
    "RecipeView",
    "RecipesView",
    "SeriesArchiveView",
    "SeriesBuilderView",
    "SeriesCreateView",
    "SeriesDryRunView",
    "SeriesEditView",
    "SeriesEmailPreviewView",
    "SeriesListView",
    "SeriesPauseView",
    "SeriesPublishView",
    "SeriesResumeView",
    "SeriesSendToMeView",
    "SeriesStepPeopleView",
    "SeriesStepsView",
    "SeriesVersionsView",
    "SeriesView",
    "SeriesWebhookSecretView",
    "SeriesWebhookTestView",
]
