"""Workspace pages of content and delivery (login required), included at the site root by
esp.urls: templates under content/, the send log under messages/, sending settings under
settings/sending/, broadcasts under broadcasts/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from campaigns import views as send_log_views

urlpatterns: list[URLPattern | URLResolver] = []

# The send log: the log, one message, and the profile's "Messages" section.
urlpatterns += [
    path("messages/", send_log_views.MessagesView.as_view(), name="messages"),
    path("messages/recent/", send_log_views.RecentSendsView.as_view(), name="overview-sends"),
    path("messages/<int:email_id>/", send_log_views.MessageView.as_view(), name="message"),
    path("messages/contact/<int:contact_id>/", send_log_views.ContactMessagesView.as_view(), name="contact-messages"),
]

# Sending settings: providers, sender identities, delivery settings.
urlpatterns += [path("settings/sending/", include("campaigns.providers.urls"))]

# Email content: templates, the starter gallery, the editor's preview, the layout; the editor's
# "send test" goes through delivery, so its page is here, above both.
urlpatterns += [
    path(
        "content/templates/<int:template_id>/test/",
        send_log_views.TemplateTestView.as_view(),
        name="content-template-test",
    ),
    path("content/", include("campaigns.content.urls")),
]

# Broadcasts: the list, the composer, each broadcast's page with its actions and report, its A/B test.
urlpatterns += [path("broadcasts/", include("campaigns.broadcasts.urls"))]
