"""API endpoints of the esp app. Each view names its scopes; the workspace always comes from
the key, never from the request, so a key cannot read another workspace."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from esp import selectors
from esp.api.permissions import request_membership
from esp.api.schema import refuse_unknown_query_parameters
from esp.api.serializers import OutboxMessageSerializer, WhoAmISerializer
from esp.models import ApiKey, ApiScope, OutboxMessage, Workspace


class WorkspaceAPIView(APIView):
    read_scope: str | None = None
    write_scope: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        refuse_unknown_query_parameters(request)

    @property
    def workspace(self) -> Workspace:
        """The key's workspace, or the session member's current one; never a request field."""
        if isinstance(self.request.auth, ApiKey):
            return self.request.auth.workspace
        membership = request_membership(self.request)
        assert membership is not None  # HasApiKeyScope refused the request otherwise
        return membership.workspace


class ApiRootView(WorkspaceAPIView):
    read_scope = ""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "me": reverse("api-me", request=request),
                "outbox_messages": reverse("api-outbox-list", request=request),
                "contacts": reverse("api-contacts", request=request),
                "lists": reverse("api-lists", request=request),
                "custom_fields": reverse("api-custom-fields", request=request),
                "suppressions": reverse("api-suppressions", request=request),
                "series": reverse("api-series-list", request=request),
                "broadcasts": reverse("api-broadcasts", request=request),
                "schema": reverse("api-schema", request=request),
                "docs": reverse("api-docs", request=request),
            }
        )


class WhoAmIView(WorkspaceAPIView):
    """The workspace this key belongs to and what the key may do."""

    read_scope = ""

    @extend_schema(responses=WhoAmISerializer, operation_id="me")
    def get(self, request: Request) -> Response:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        return Response(WhoAmISerializer({"workspace": self.workspace, "api_key": api_key}).data)


class OutboxMessageListView(WorkspaceAPIView, generics.ListAPIView[OutboxMessage]):
    """Mail stored by the outbox transport, newest first (cursor-paginated)."""

    read_scope = ApiScope.MESSAGES_READ
    serializer_class = OutboxMessageSerializer

    def get_queryset(self) -> QuerySet[OutboxMessage]:
        return selectors.outbox_messages(workspace=self.workspace)


class OutboxMessageDetailView(WorkspaceAPIView, generics.RetrieveAPIView[OutboxMessage]):
    read_scope = ApiScope.MESSAGES_READ
    serializer_class = OutboxMessageSerializer

    def get_object(self) -> OutboxMessage:
        return selectors.outbox_message_get(workspace=self.workspace, message_id=self.kwargs["message_id"])
