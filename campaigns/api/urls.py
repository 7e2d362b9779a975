"""URLs of the campaigns API, included under /api/v1/ by esp.api.urls."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from campaigns.api import views as delivery_views
from campaigns.content import api as content_api

urlpatterns: list[URLPattern | URLResolver] = [
    path("messages", delivery_views.MessageSendView.as_view(), name="api-messages"),
    path("messages/<int:email_id>", delivery_views.MessageDetailView.as_view(), name="api-message"),
]

# Email templates.
urlpatterns += [path("templates", content_api.TemplateListView.as_view(), name="api-templates")]
urlpatterns += [path("templates/<int:template_id>", content_api.TemplateDetailView.as_view(), name="api-template")]
