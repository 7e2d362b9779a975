"""API endpoints of the campaigns app: the transactional send and a message's status.

Views parse and answer; campaigns.delivery.services makes the message and the drain sends it.
Every object is looked up in the caller's workspace: another workspace's ids are 404s (a
message) or a 400 naming the field (a template or contact given in a request body)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import selectors
from campaigns.api import serializers as s
from campaigns.delivery.services import message_send_transactional
from campaigns.models import EmailTemplate
from esp.api.views import WorkspaceAPIView
from esp.models import ApiScope

NOT_FOUND = OpenApiResponse(description="No such message in this workspace.")


class MessageSendView(WorkspaceAPIView):
    write_scope = ApiScope.MESSAGES_SEND

    @extend_schema(
        operation_id="messages_send",
        summary="Send a transactional message",
        description=(
            "Queues one email of the template to the contact, personalised with `data` as `event`. "
            "Answers 202 with the new message; a request whose `idempotency_key` was used before sends nothing "
            "and answers 200 with the first request's message. The message class is the template's: a "
            "transactional template's mail skips list unsubscribes, caps and quiet hours, never a hard-bounced, "
            "complaining or erased address."
        ),
        request=s.MessageSendSerializer,
        responses={202: s.MessageSerializer, 200: s.MessageSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = s.MessageSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        template = EmailTemplate.objects.in_workspace(self.workspace).filter(pk=body["template"]).first()
        if template is None:
            raise exceptions.ValidationError({"template": [_("No email template with this id in the workspace.")]})
        message, created = message_send_transactional(
            workspace=self.workspace,
            template=template,
            email=body["contact"].get("email"),
            contact_id=body["contact"].get("id"),
            data=body["data"],
            idempotency_key=body["idempotency_key"],
        )
        return Response(
            s.MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )


class MessageDetailView(WorkspaceAPIView):
    read_scope = ApiScope.MESSAGES_READ

    @extend_schema(
        operation_id="messages_get",
        summary="A message's status and events",
        responses={200: s.MessageDetailSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, email_id: int) -> Response:
        message = selectors.message_get(workspace=self.workspace, email_id=email_id)
        events = selectors.message_events(workspace=self.workspace, message=message)
        return Response(s.MessageDetailSerializer(message, context={"events": events}).data)
