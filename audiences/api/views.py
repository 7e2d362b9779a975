"""API endpoints of the audiences app: contacts, lists, subscriptions, custom fields,
suppressions, and a contact's GDPR export and erasure.

Views parse and answer; the rules live in services (writes), selectors (reads) and
audiences.contacts (what a valid contact is). Every object is looked up in the caller's
workspace, so another workspace's ids are 404s."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from audiences import gdpr, selectors, services
from audiences.api import serializers as s
from audiences.contacts import contact_payload, custom_fields_of
from audiences.models import (
    ConsentSource,
    Contact,
    CustomField,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from esp.api.permissions import request_membership
from esp.api.views import WorkspaceAPIView
from esp.models import ApiKey, ApiScope, Role

NOT_FOUND = OpenApiResponse(description="No such object in this workspace.")
DELETED = OpenApiResponse(description="Deleted.")


class AudiencesAPIView(WorkspaceAPIView):
    read_scope = ApiScope.CONTACTS_READ
    write_scope = ApiScope.CONTACTS_WRITE


def consent_context(request: Request, text: str = "") -> services.ConsentContext:
    """Consent given through the API: the caller's address and user agent, and the wording."""
    return services.ConsentContext.from_request(request.META, ConsentSource.API, text)


def _id_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: [_("Expected a whole number.")]}) from None


# --- contacts -------------------------------------------------------------------------------


CONTACT_FILTERS = [
    OpenApiParameter("email", str, description="The address, compared case-insensitively."),
    OpenApiParameter("external_id", str, description="The shop's own id of the customer."),
    OpenApiParameter("list", int, description="Only contacts with a subscription to this list."),
    OpenApiParameter(
        "status",
        str,
        enum=SubscriptionStatus.values,
        description="Only subscriptions in this status (to `list`, if given).",
    ),
    OpenApiParameter("tag", str, description="Only contacts with this tag."),
    OpenApiParameter(
        "q", str, description="Searched in email, first and last name; with an @, a prefix of the address."
    ),
]


class ContactListView(AudiencesAPIView, generics.ListAPIView[Contact]):
    """Contacts of the workspace, newest first (cursor-paginated)."""

    serializer_class = s.ContactSerializer

    def get_queryset(self) -> QuerySet[Contact]:
        params = self.request.query_params
        list_status = params.get("status", "")
        if list_status and list_status not in SubscriptionStatus.values:
            raise exceptions.ValidationError({"status": [_("One of: %s.") % ", ".join(SubscriptionStatus.values)]})
        filters = selectors.ContactFilters(
            email=params.get("email", "").strip(),
            external_id=params.get("external_id", "").strip(),
            list_id=_id_param(self.request, "list"),
            status=list_status,
            tag=params.get("tag", "").strip(),
            q=params.get("q", ""),
        )
        return selectors.contacts(workspace=self.workspace, filters=filters)

    @extend_schema(operation_id="contacts_list", parameters=CONTACT_FILTERS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="contacts_save",
        summary="Create a contact, or update the one with this address",
        description=(
            "201 when created, 200 when an existing contact (same address, compared case-insensitively) was "
            "updated: only the given fields change. A suppressed address is refused (400 on `email`)."
        ),
        request=s.ContactInputSerializer,
        responses={201: s.ContactDetailSerializer, 200: s.ContactDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = contact_payload(request.data, custom_fields_of(self.workspace), ignored=s.READ_ONLY_CONTACT_FIELDS)
        contact, created = services.contact_save(workspace=self.workspace, data=payload, source=ConsentSource.API)
        return Response(
            s.ContactDetailSerializer(contact).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ContactDetailView(AudiencesAPIView):
    @extend_schema(operation_id="contacts_get", responses={200: s.ContactDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, contact_id: int) -> Response:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        return Response(s.ContactDetailSerializer(contact).data)

    @extend_schema(
        operation_id="contacts_update",
        summary="Change the given fields of a contact",
        request=s.ContactChangeSerializer,
        responses={200: s.ContactDetailSerializer, 404: NOT_FOUND},
    )
    def patch(self, request: Request, contact_id: int) -> Response:
        selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        payload = contact_payload(request.data, custom_fields_of(self.workspace), ignored=s.READ_ONLY_CONTACT_FIELDS)
        contact = services.contact_update(workspace=self.workspace, contact_id=contact_id, data=payload)
        return Response(s.ContactDetailSerializer(contact).data)

    @extend_schema(operation_id="contacts_delete", responses={204: DELETED, 404: NOT_FOUND})
    def delete(self, request: Request, contact_id: int) -> Response:
        services.contact_delete(workspace=self.workspace, contact_id=contact_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactLookupView(AudiencesAPIView):
    @extend_schema(
        operation_id="contacts_lookup",
        summary="Find one contact by address or external id",
        parameters=[
            OpenApiParameter(
                "email", {"type": "string", "minLength": 1}, description="The address, compared case-insensitively."
            ),
            OpenApiParameter(
                "external_id", {"type": "string", "minLength": 1}, description="The shop's own id of the customer."
            ),
        ],
        responses={200: s.ContactDetailSerializer, 400: OpenApiResponse(description="Neither given."), 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        email = request.query_params.get("email", "").strip()
        external_id = request.query_params.get("external_id", "").strip()
        if not email and not external_id:
            raise exceptions.ValidationError({"email": [_("Give email or external_id.")]})
        contact = selectors.contact_find(workspace=self.workspace, email=email, external_id=external_id)
        if contact is None:
            raise exceptions.NotFound(_("No contact matches."))
        return Response(s.ContactDetailSerializer(contact).data)


class ContactBulkView(AudiencesAPIView):
    @extend_schema(
        operation_id="contacts_bulk_upsert",
        summary="Create or update up to 1000 contacts",
        description=(
            "Each item is judged on its own: an invalid one is `rejected` with its field errors and the "
            "others are written in one pass. With `list`, new and updated contacts are subscribed to it "
            "(an earlier unsubscribe is kept)."
        ),
        request=s.BulkContactsSerializer,
        responses={200: s.BulkResultSerializer},
    )
    def post(self, request: Request) -> Response:
        envelope = s.BulkContactsSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        body = envelope.validated_data
        mailing_list: MailingList | None = None
        if body["list"] is not None:
            mailing_list = selectors.lists(workspace=self.workspace).filter(pk=body["list"]).first()
            if mailing_list is None:
                raise exceptions.ValidationError({"list": [_("No such list.")]})
        result = services.contacts_bulk_save(
            workspace=self.workspace,
            items=body["contacts"],
            ignored=s.READ_ONLY_CONTACT_FIELDS,
            update_existing=body["update_existing"],
            mailing_list=mailing_list,
            consent_text=body["consent_text"],
        )
        results = [
            {"index": item.index, "status": item.status, "id": item.contact_id, "errors": item.errors}
            for item in result.items
        ]
        return Response({**result.counts, "results": results})


# --- GDPR -----------------------------------------------------------------------------------


class ContactExportView(AudiencesAPIView):
    @extend_schema(
        operation_id="contacts_export",
        summary="Everything held about one contact (GDPR Art. 15)",
        responses={200: OpenApiTypes.OBJECT, 404: NOT_FOUND},
    )
    def get(self, request: Request, contact_id: int) -> Response:
        return Response(gdpr.contact_export(workspace=self.workspace, contact_id=contact_id))


class ContactEraseView(AudiencesAPIView):
    @extend_schema(
        operation_id="contacts_erase",
        summary="Erase a contact (GDPR Art. 17)",
        description=(
            "Deletes the contact with its subscriptions, consent records and stored mail; the address is "
            "kept only as a hash on the suppression list, so it is never mailed again."
        ),
        request=None,
        responses={204: OpenApiResponse(description="Erased."), 404: NOT_FOUND},
    )
    def post(self, request: Request, contact_id: int) -> Response:
        gdpr.contact_erase(workspace=self.workspace, contact_id=contact_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- lists ----------------------------------------------------------------------------------


class ListListView(AudiencesAPIView, generics.ListAPIView[MailingList]):
    """The workspace's lists, newest first (cursor-paginated)."""

    serializer_class = s.MailingListSerializer

    def get_queryset(self) -> QuerySet[MailingList]:
        return selectors.lists(workspace=self.workspace)

    @extend_schema(operation_id="lists_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="lists_create",
        description="Create a list; its name is unique in the workspace.",
        request=s.MailingListSerializer,
        responses={201: s.MailingListDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = s.MailingListSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mailing_list = services.list_save(workspace=self.workspace, data=dict(serializer.validated_data))
        detail = selectors.list_get_with_counts(workspace=self.workspace, list_id=mailing_list.pk)
        return Response(s.MailingListDetailSerializer(detail).data, status=status.HTTP_201_CREATED)


class ListDetailView(AudiencesAPIView):
    @extend_schema(operation_id="lists_get", responses={200: s.MailingListDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, list_id: int) -> Response:
        mailing_list = selectors.list_get_with_counts(workspace=self.workspace, list_id=list_id)
        return Response(s.MailingListDetailSerializer(mailing_list).data)

    @extend_schema(
        operation_id="lists_update",
        request=s.MailingListSerializer(partial=True),
        responses={200: s.MailingListDetailSerializer, 404: NOT_FOUND},
    )
    def patch(self, request: Request, list_id: int) -> Response:
        current = selectors.list_get(workspace=self.workspace, list_id=list_id)
        serializer = s.MailingListSerializer(current, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.list_save(
            workspace=self.workspace, data={"name": current.name, **serializer.validated_data}, list_id=list_id
        )
        mailing_list = selectors.list_get_with_counts(workspace=self.workspace, list_id=list_id)
        return Response(s.MailingListDetailSerializer(mailing_list).data)

    @extend_schema(operation_id="lists_delete", responses={204: DELETED, 404: NOT_FOUND})
    def delete(self, request: Request, list_id: int) -> Response:
        services.list_delete(workspace=self.workspace, list_id=list_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- subscriptions --------------------------------------------------------------------------


class SubscribeView(AudiencesAPIView):
    @extend_schema(
        operation_id="lists_subscribe",
        summary="Subscribe an address or a contact to the list",
        description=(
            "A list with double opt-in answers `pending` and mails a confirmation link; others `subscribed`. "
            "A new address becomes a contact. A suppressed address is refused (400, on `email`)."
        ),
        request=s.SubscribeSerializer,
        responses={201: s.SubscriptionSerializer, 200: s.SubscriptionSerializer, 404: NOT_FOUND},
    )
    def post(self, request: Request, list_id: int) -> Response:
        mailing_list = selectors.list_get(workspace=self.workspace, list_id=list_id)
        serializer = s.SubscribeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        subscription, created = services.subscription_subscribe_by(
            workspace=self.workspace,
            mailing_list=mailing_list,
            contact_id=body.get("contact_id"),
            email=body.get("email", ""),
            context=consent_context(request, body["consent_text"]),
        )
        return Response(
            s.SubscriptionSerializer(subscription).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class UnsubscribeView(AudiencesAPIView):
    @extend_schema(
        operation_id="lists_unsubscribe",
        summary="Unsubscribe a contact from the list",
        request=None,
        responses={200: s.SubscriptionSerializer, 404: NOT_FOUND},
    )
    def delete(self, request: Request, list_id: int, contact_id: int) -> Response:
        mailing_list = selectors.list_get(workspace=self.workspace, list_id=list_id)
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        subscription: Subscription | None = services.subscription_unsubscribe(
            workspace=self.workspace, contact=contact, mailing_list=mailing_list, context=consent_context(request)
        )
        if subscription is None:
            raise exceptions.NotFound(_("This contact has no subscription to this list."))
        return Response(s.SubscriptionSerializer(subscription).data)


# --- custom fields --------------------------------------------------------------------------


class CustomFieldListView(AudiencesAPIView, generics.ListAPIView[CustomField]):
    """The workspace's custom contact fields (cursor-paginated)."""

    serializer_class = s.CustomFieldSerializer

    def get_queryset(self) -> QuerySet[CustomField]:
        return selectors.custom_fields(workspace=self.workspace)

    @extend_schema(operation_id="custom_fields_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="custom_fields_create",
        description="Declare a typed custom field; `choices` are required for the type choice.",
        request=s.CustomFieldSerializer,
        responses={201: s.CustomFieldSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = s.CustomFieldSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        field = services.custom_field_save(workspace=self.workspace, data=dict(serializer.validated_data))
        return Response(s.CustomFieldSerializer(field).data, status=status.HTTP_201_CREATED)


class CustomFieldDetailView(AudiencesAPIView):
    @extend_schema(operation_id="custom_fields_get", responses={200: s.CustomFieldSerializer, 404: NOT_FOUND})
    def get(self, request: Request, field_id: int) -> Response:
        return Response(
            s.CustomFieldSerializer(selectors.custom_field_get(workspace=self.workspace, field_id=field_id)).data
        )

    @extend_schema(
        operation_id="custom_fields_update",
        description="The label and the choices can change; the key and the type are fixed once created.",
        request=s.CustomFieldSerializer(partial=True),
        responses={200: s.CustomFieldSerializer, 404: NOT_FOUND},
    )
    def patch(self, request: Request, field_id: int) -> Response:
        current = selectors.custom_field_get(workspace=self.workspace, field_id=field_id)
        serializer = s.CustomFieldSerializer(current, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        field = services.custom_field_save(
            workspace=self.workspace, data=dict(serializer.validated_data), field_id=field_id
        )
        return Response(s.CustomFieldSerializer(field).data)

    @extend_schema(
        operation_id="custom_fields_delete",
        description=(
            "Values stored on contacts are kept (declaring the key again brings them back), unless "
            "`purge_values=true`: then they are removed from every contact."
        ),
        parameters=[OpenApiParameter("purge_values", bool, description="Also remove the stored values.")],
        responses={204: DELETED, 404: NOT_FOUND},
    )
    def delete(self, request: Request, field_id: int) -> Response:
        purge = request.query_params.get("purge_values", "").lower() in {"1", "true", "yes"}
        services.custom_field_delete(workspace=self.workspace, field_id=field_id, purge_values=purge)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- suppressions ---------------------------------------------------------------------------


class SuppressionListView(AudiencesAPIView, generics.ListAPIView[Suppression]):
    """Addresses no marketing mail may reach, newest first (cursor-paginated)."""

    serializer_class = s.SuppressionSerializer

    def get_queryset(self) -> QuerySet[Suppression]:
        reason = self.request.query_params.get("reason", "")
        if reason and reason not in SuppressionReason.values:
            raise exceptions.ValidationError({"reason": [_("One of: %s.") % ", ".join(SuppressionReason.values)]})
        email = self.request.query_params.get("email", "")
        return selectors.suppressions(workspace=self.workspace, email=email, reason=reason)

    @extend_schema(
        operation_id="suppressions_list",
        parameters=[
            OpenApiParameter("email", str, description="The address; also finds erased ones, by hash."),
            OpenApiParameter("reason", str, enum=SuppressionReason.values),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="suppressions_add",
        description="201 when added, 200 when the address was suppressed already (that entry is answered).",
        request=s.SuppressionInputSerializer,
        responses={201: s.SuppressionSerializer, 200: s.SuppressionSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = s.SuppressionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        existed = selectors.suppressions(workspace=self.workspace, email=body["email"]).exists()
        suppression = services.suppression_add(
            workspace=self.workspace, email=body["email"], reason=body["reason"], note=body["note"]
        )
        return Response(
            s.SuppressionSerializer(suppression).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )


class SuppressionDetailView(AudiencesAPIView):
    @extend_schema(operation_id="suppressions_get", responses={200: s.SuppressionSerializer, 404: NOT_FOUND})
    def get(self, request: Request, suppression_id: int) -> Response:
        suppression = selectors.suppression_get(workspace=self.workspace, suppression_id=suppression_id)
        return Response(s.SuppressionSerializer(suppression).data)

    @extend_schema(
        operation_id="suppressions_lift",
        summary="Lift a suppression",
        description="For API keys with contacts:write and, in the browser, for owners only.",
        responses={204: OpenApiResponse(description="Lifted."), 403: OpenApiResponse(), 404: NOT_FOUND},
    )
    def delete(self, request: Request, suppression_id: int) -> Response:
        # Mailing an address again that bounced or complained is an owner's decision. The key
        # case has passed HasApiKeyScope with contacts:write already.
        if not isinstance(request.auth, ApiKey):
            membership = request_membership(request)
            if membership is None or membership.role != Role.OWNER:
                raise exceptions.PermissionDenied(_("Only an owner may lift a suppression."))
        services.suppression_lift(workspace=self.workspace, suppression_id=suppression_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
