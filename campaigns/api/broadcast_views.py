"""API endpoints of broadcasts: CRUD of drafts, the live audience count, schedule (or send now),
back to draft, pause, resume, cancel, duplicate, a test send, and progress with the report's
figures in every answer.

Views parse and answer; the services write (campaigns.broadcasts.services) and check every rule,
their errors coming back as 400s by field. Every broadcast is looked up in the caller's
workspace first: another workspace's id is a 404 before any body is read.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from audiences import selectors as audience_selectors
from campaigns.api import broadcast_serializers as s
from campaigns.broadcast_models import Broadcast, BroadcastStatus
from campaigns.broadcasts import selectors, services
from campaigns.broadcasts.audience import audience_count
from campaigns.delivery.services import message_send_test
from esp.api.errors import error_body
from esp.api.views import WorkspaceAPIView
from esp.models import ApiScope

NOT_FOUND = OpenApiResponse(description="No such broadcast in this workspace.")


class BroadcastAPIView(WorkspaceAPIView):
    read_scope = ApiScope.BROADCASTS_READ
    write_scope = ApiScope.BROADCASTS_WRITE

    def get_broadcast(self, broadcast_id: int) -> Broadcast:
        try:
            return selectors.broadcast_get(workspace=self.workspace, broadcast_id=broadcast_id)
        except Broadcast.DoesNotExist:
            raise exceptions.NotFound(_("No such broadcast in this workspace.")) from None

    def detail(self, broadcast_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        progress = selectors.progress(workspace=self.workspace, broadcast_ids=[broadcast.pk])
        return Response(s.BroadcastSerializer(broadcast, context={"progress": progress}).data, status=status_code)


def _input(data: dict[str, Any]) -> services.BroadcastInput:
    # A tracking switch given as null follows the workspace's delivery settings.
    for switch in ("track_opens", "track_clicks"):
        if switch in data and data[switch] is None:
            data[switch] = services.WORKSPACE_SETTING
    return services.BroadcastInput(**data)


class BroadcastListView(BroadcastAPIView, generics.ListAPIView[Broadcast]):
    serializer_class = s.BroadcastSerializer

    def get_queryset(self) -> QuerySet[Broadcast]:
        return selectors.broadcasts(workspace=self.workspace)

    @extend_schema(operation_id="broadcasts_list", summary="The workspace's broadcasts with their progress")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # the project's pagination always pages
        progress = selectors.progress(workspace=self.workspace, broadcast_ids=[b.pk for b in page])
        return self.get_paginated_response(s.BroadcastSerializer(page, many=True, context={"progress": progress}).data)

    @extend_schema(
        operation_id="broadcasts_create",
        summary="Compose a broadcast (a draft)",
        description="Every field is optional but `name`; schedule it when its audience, template and time are set.",
        request=s.BroadcastInputSerializer,
        responses={201: s.BroadcastSerializer},
    )
    def post(self, request: Request) -> Response:
        body = s.BroadcastInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        broadcast = services.broadcast_create(workspace=self.workspace, data=_input(body.validated_data))
        return self.detail(broadcast.pk, status.HTTP_201_CREATED)


class BroadcastDetailView(BroadcastAPIView):
    @extend_schema(operation_id="broadcasts_get", responses={200: s.BroadcastSerializer, 404: NOT_FOUND})
    def get(self, request: Request, broadcast_id: int) -> Response:
        return self.detail(self.get_broadcast(broadcast_id).pk)

    @extend_schema(
        operation_id="broadcasts_update",
        summary="Change a draft or scheduled broadcast",
        description="Only the given fields change. A scheduled broadcast must stay ready to send (400 otherwise).",
        request=s.BroadcastInputSerializer(partial=True),
        responses={200: s.BroadcastSerializer, 404: NOT_FOUND},
    )
    def patch(self, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        body = s.BroadcastInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        services.broadcast_update(workspace=self.workspace, broadcast_id=broadcast.pk, data=_input(body.validated_data))
        return self.detail(broadcast.pk)

    @extend_schema(
        operation_id="broadcasts_delete",
        summary="Delete a draft",
        responses={204: OpenApiResponse(description="Deleted."), 404: NOT_FOUND, 409: OpenApiResponse(
            description="Not a draft: a broadcast that was scheduled or sent is cancelled, not deleted.")},
    )  # fmt: skip
    def delete(self, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        if broadcast.status != BroadcastStatus.DRAFT:
            message = _("Only a draft can be deleted; cancel a scheduled or sending broadcast instead.")
            return Response(error_body(409, "cancel_instead", message), status=status.HTTP_409_CONFLICT)
        broadcast.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class BroadcastAudienceView(BroadcastAPIView):
    @extend_schema(
        operation_id="broadcasts_audience",
        summary="Who the broadcast would reach now",
        responses={200: s.AudienceCountSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, broadcast_id: int) -> Response:
        count = audience_count(self.workspace, self.get_broadcast(broadcast_id))
        return Response(s.AudienceCountSerializer(count).data)


def _action_view(name: str, summary: str, description: str) -> type[BroadcastAPIView]:
    """POST with no body: one state change (a service of the same name), answered with the
    broadcast as it is now."""
    act = getattr(services, f"broadcast_{name}")

    @extend_schema(
        operation_id=f"broadcasts_{name}",
        summary=summary,
        description=description,
        request=None,
        responses={200: s.BroadcastSerializer, 404: NOT_FOUND},
    )
    def post(self: BroadcastAPIView, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        act(workspace=self.workspace, broadcast_id=broadcast.pk)
        return self.detail(broadcast.pk)

    return type(f"Broadcast{name.title()}View", (BroadcastAPIView,), {"post": post})


BroadcastScheduleView = _action_view(
    "schedule",
    "Schedule it (send_mode now: start sending at once)",
    "400 naming what is missing: template, an audience, a moment to come.",
)
BroadcastUnscheduleView = _action_view("unschedule", "Back to draft", "Only a scheduled broadcast.")
BroadcastPauseView = _action_view(
    "pause", "Pause sending", "Messages not yet taken by a worker wait; those taken finish their send."
)
BroadcastResumeView = _action_view("resume", "Resume sending", "Held messages go at their own times (past: at once).")
BroadcastCancelView = _action_view(
    "cancel", "Cancel for good", "Queued messages are settled as skipped with the reason broadcast_cancelled."
)


class BroadcastDuplicateView(BroadcastAPIView):
    @extend_schema(
        operation_id="broadcasts_duplicate",
        summary="A new draft with the same settings",
        request=None,
        responses={201: s.BroadcastSerializer, 404: NOT_FOUND},
    )
    def post(self, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        copy = services.broadcast_duplicate(workspace=self.workspace, broadcast_id=broadcast.pk)
        return self.detail(copy.pk, status.HTTP_201_CREATED)


class BroadcastTestView(BroadcastAPIView):
    @extend_schema(
        operation_id="broadcasts_test",
        summary="Send a test of the broadcast's email",
        description="To one address, with the broadcast's subject, personalised as a contact when one is named.",
        request=s.TestSendSerializer,
        responses={202: OpenApiResponse(description="Queued."), 404: NOT_FOUND},
    )
    def post(self, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        body = s.TestSendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if broadcast.template is None:
            raise exceptions.ValidationError({"template": [_("Choose the email to send.")]})
        contact = None
        if "contact" in body.validated_data:
            contact = (
                audience_selectors.contacts(workspace=self.workspace).filter(pk=body.validated_data["contact"]).first()
            )
            if contact is None:
                raise exceptions.ValidationError({"contact": [_("No such contact in this workspace.")]})
        message = message_send_test(
            workspace=self.workspace,
            template=broadcast.template,
            to_email=body.validated_data["to"],
            sample_contact=contact,
            subject_override=broadcast.subject,
            preheader_override=broadcast.preheader,
            broadcast_id=broadcast.pk,
        )
        return Response({"message": message.pk}, status=status.HTTP_202_ACCEPTED)
