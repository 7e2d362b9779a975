"""Workspace pages of content and delivery (login required), included at the site root by
esp.urls: templates under content/, the send log under messages/, sending settings under
settings/sending/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from campaigns import views as send_log_views

urlpatterns: list[URLPattern | URLResolver] = []

# The send log (H6): the log, one message, and the profile's "Messages" section.
urlpatterns += [
    path("messages/", send_log_views.MessagesView.as_view(), name="messages"),
    path("messages/recent/", send_log_views.RecentSendsView.as_view(), name="overview-sends"),
    path("messages/<int:email_id>/", send_log_views.MessageView.as_view(), name="message"),
    path("messages/contact/<int:contact_id>/", send_log_views.ContactMessagesView.as_view(), name="contact-messages"),
]

# Sending settings (H2): providers, sender identities, delivery settings.
urlpatterns += [path("settings/sending/", include("campaigns.providers.urls"))]

# Email content (H1): templates, the starter gallery, the editor's preview, the layout.
urlpatterns += [path("content/", include("campaigns.content.urls"))]
