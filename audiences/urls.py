from __future__ import annotations

from django.urls import path

from audiences import views

urlpatterns = [
    path("contacts/", views.ContactsView.as_view(), name="contacts"),
    path("contacts/new/", views.ContactCreateView.as_view(), name="contact-create"),
    path("contacts/<int:contact_id>/", views.ContactView.as_view(), name="contact"),
    path(
        "contacts/<int:contact_id>/subscriptions/", views.ContactSubscriptionView.as_view(), name="contact-subscription"
    ),
    path("contacts/<int:contact_id>/delete/", views.ContactDeleteView.as_view(), name="contact-delete"),
    path("lists/", views.ListsView.as_view(), name="lists"),
    path("lists/<int:list_id>/", views.ListEditView.as_view(), name="list-edit"),
    path("fields/", views.CustomFieldsView.as_view(), name="custom-fields"),
    path("fields/<int:field_id>/delete/", views.CustomFieldDeleteView.as_view(), name="custom-field-delete"),
    path("suppressions/", views.SuppressionsView.as_view(), name="suppressions"),
    path("suppressions/<int:suppression_id>/lift/", views.SuppressionLiftView.as_view(), name="suppression-lift"),
]
