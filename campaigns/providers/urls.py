"""Settings → Sending, under /settings/sending/ (included by campaigns.urls)."""

from __future__ import annotations

from django.urls import path

from campaigns.providers import views

urlpatterns = [
    path("providers/", views.ProvidersView.as_view(), name="providers"),
    path("providers/new/", views.ProviderCreateView.as_view(), name="provider-create"),
    path("providers/outbox/default/", views.OutboxDefaultView.as_view(), name="provider-outbox-default"),
    path("providers/<int:provider_id>/", views.ProviderEditView.as_view(), name="provider-edit"),
    path("providers/<int:provider_id>/test/", views.ProviderTestView.as_view(), name="provider-test"),
    path("providers/<int:provider_id>/default/", views.ProviderDefaultView.as_view(), name="provider-default"),
    path("providers/<int:provider_id>/delete/", views.ProviderDeleteView.as_view(), name="provider-delete"),
    path("senders/", views.SendersView.as_view(), name="senders"),
    path("senders/<int:sender_id>/", views.SenderEditView.as_view(), name="sender-edit"),
    path("senders/<int:sender_id>/default/", views.SenderDefaultView.as_view(), name="sender-default"),
    path("senders/<int:sender_id>/delete/", views.SenderDeleteView.as_view(), name="sender-delete"),
    path("delivery/", views.DeliverySettingsView.as_view(), name="delivery-settings"),
]
