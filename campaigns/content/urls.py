"""Pages of email content, under /content/ (see campaigns.urls)."""

from __future__ import annotations

from django.urls import path

from campaigns.content import views

urlpatterns = [
    path("templates/", views.TemplatesView.as_view(), name="content-templates"),
    path("templates/new/", views.TemplateNewView.as_view(), name="content-template-new"),
    path("templates/<int:template_id>/", views.TemplateEditView.as_view(), name="content-template"),
    path(
        "templates/<int:template_id>/preview/",
        views.TemplateSavedPreviewView.as_view(),
        name="content-template-preview",
    ),
    path("templates/<int:template_id>/delete/", views.TemplateDeleteView.as_view(), name="content-template-delete"),
    path("preview/", views.TemplatePreviewView.as_view(), name="content-preview"),
    path("preview/events/", views.SampleEventsView.as_view(), name="content-sample-events"),
    path("layout/", views.LayoutView.as_view(), name="content-layout"),
]
