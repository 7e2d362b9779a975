"""Pages for the public (no login): a list's subscribe form and the double opt-in confirmation."""

from __future__ import annotations

from django.urls import path

from audiences import views

urlpatterns = [
    path("<slug:workspace_slug>/<int:list_id>/", views.PublicSubscribeView.as_view(), name="public-subscribe"),
    path("confirm/<str:token>/", views.ConfirmSubscriptionView.as_view(), name="confirm-subscription"),
]
