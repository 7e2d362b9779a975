"""API of email templates: list and create (from MJML or a starter), read and change one.
Content problems are answered in the project's error shape with the field and line:

    {"error": {"status": 400, "code": "invalid", "message": "...",
               "fields": {"mjml": ["line 12: Unknown MJML element <mj-colum>."]},
               "problems": [{"field": "mjml", "line": 12, "message": "Unknown MJML element <mj-colum>."}]}}
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.content import selectors, services
from campaigns.content.errors import TemplateProblems
from campaigns.content.forms import PART_FIELDS
from campaigns.content.starters import STARTERS
from campaigns.models import EmailTemplate
from esp.api.errors import error_body
from esp.api.views import WorkspaceAPIView
from esp.models import ApiScope

NOT_FOUND = OpenApiResponse(description="No such template in this workspace.")
INVALID = OpenApiResponse(description="Invalid fields or content problems, each with its field and line.")


class TemplateSerializer(serializers.ModelSerializer[EmailTemplate]):
    # Ids, checked against the workspace by the service (another's is "no such").
    sender = serializers.IntegerField(
        source="sender_id", allow_null=True, required=False, help_text="Sender identity id; null: the default."
    )
    provider = serializers.IntegerField(
        source="provider_id", allow_null=True, required=False, help_text="Provider id; null: the default."
    )

    class Meta:
        model = EmailTemplate
        fields = [
            "id", "name", "description", "message_class", "subject", "preheader", "mjml", "text_body",
            "use_layout", "sender", "provider", "version", "starter", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "version", "starter", "created_at", "updated_at"]
        extra_kwargs = {"mjml": {"trim_whitespace": False}, "text_body": {"trim_whitespace": False}}
        # Name uniqueness (case-insensitive, per workspace) is the service's to judge.
        validators: list[Any] = []


class TemplateCreateSerializer(TemplateSerializer):
    starter = serializers.ChoiceField(
        choices=sorted(STARTERS), required=False, help_text="Copy this starter template instead of sending MJML."
    )

    class Meta(TemplateSerializer.Meta):
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        extra_kwargs = {
            **TemplateSerializer.Meta.extra_kwargs,
            "name": {"required": False},
            "subject": {"required": False},
            "mjml": {"required": False, "trim_whitespace": False},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("starter"):
            missing = {f: [_("This field is required.")] for f in ("name", "subject", "mjml") if not attrs.get(f)}
            if missing:
                raise serializers.ValidationError(missing)
        return attrs


class TemplateFromMjmlSerializer(TemplateSerializer):
    """For the document only: a new template from MJML needs its name, subject and MJML."""

    class Meta(TemplateSerializer.Meta):
        fields = [field for field in TemplateSerializer.Meta.fields if field != "starter"]
        extra_kwargs = {
            **TemplateSerializer.Meta.extra_kwargs,
            "name": {"required": True},
            "subject": {"required": True},
            "mjml": {"required": True, "trim_whitespace": False},
        }


class TemplateFromStarterSerializer(serializers.Serializer[dict[str, Any]]):
    """For the document only: a copy of a starter template, under its own name or the given one."""

    starter = serializers.ChoiceField(choices=sorted(STARTERS), help_text="The starter template to copy.")
    name = serializers.CharField(required=False, max_length=200, help_text="Default: the starter's name.")


def _problems_response(problems: TemplateProblems) -> Response:
    fields: dict[str, list[str]] = {}
    rows = []
    for problem in problems.problems:
        field = PART_FIELDS.get(problem.part, "mjml")
        fields.setdefault(field, []).append(str(problem))
        rows.append({"field": field, "line": problem.line, "message": problem.message})
    body = error_body(400, "invalid", _("The template has problems; nothing was saved."), fields)
    body["error"]["problems"] = rows
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class ContentAPIView(WorkspaceAPIView):
    read_scope = ApiScope.CONTENT_READ
    write_scope = ApiScope.CONTENT_WRITE


class TemplateListView(ContentAPIView, generics.ListAPIView[EmailTemplate]):
    """The workspace's email templates, newest first (cursor-paginated)."""

    serializer_class = TemplateSerializer

    def get_queryset(self) -> QuerySet[EmailTemplate]:
        return EmailTemplate.objects.in_workspace(self.workspace)

    @extend_schema(operation_id="templates_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="templates_create",
        description="Create a template from MJML, or copy a starter (`starter`, optional `name`). "
        "The content is validated and compiled; problems come back with their field and line.",
        # Two shapes, which one serializer cannot state: MJML with its required fields, or a starter.
        request=PolymorphicProxySerializer(
            component_name="TemplateCreate",
            serializers=[TemplateFromMjmlSerializer, TemplateFromStarterSerializer],
            resource_type_field_name=None,
        ),
        responses={201: TemplateSerializer, 400: INVALID},
    )
    def post(self, request: Request) -> Response:
        serializer = TemplateCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        starter = data.pop("starter", "")
        try:
            if starter:
                template = services.template_copy_starter(
                    workspace=self.workspace, starter_key=starter, name=data.get("name", "")
                )
            else:
                template = services.template_create(workspace=self.workspace, data=data)
        except TemplateProblems as problems:
            return _problems_response(problems)
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailView(ContentAPIView):
    @extend_schema(operation_id="templates_get", responses={200: TemplateSerializer, 404: NOT_FOUND})
    def get(self, request: Request, template_id: int) -> Response:
        template = selectors.template_get(workspace=self.workspace, template_id=template_id)
        return Response(TemplateSerializer(template).data)

    @extend_schema(
        operation_id="templates_update",
        description="Change a template; a change of content is validated, compiled and makes a new version.",
        request=TemplateSerializer(partial=True),
        responses={200: TemplateSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def patch(self, request: Request, template_id: int) -> Response:
        current = selectors.template_get(workspace=self.workspace, template_id=template_id)
        serializer = TemplateSerializer(current, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            template = services.template_update(
                workspace=self.workspace, template_id=current.pk, data=dict(serializer.validated_data)
            )
        except TemplateProblems as problems:
            return _problems_response(problems)
        return Response(TemplateSerializer(template).data)
