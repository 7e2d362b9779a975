"""API endpoints of segments: list / create, get / change / delete, current members
(cursor-paginated), and a count for a rule tree (previews while a client edits rules).

The rule tree is the JSON of audiences.segments (groups of conditions); an invalid one is a 400
whose `fields` name each problem by path: {"rules.conditions[2].operator": ["..."]}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audiences.api.serializers import ContactSerializer
from audiences.api.views import AudiencesAPIView
from audiences.models import Segment, SegmentMembership
from audiences.segments import selectors, services
from audiences.segments.compiler import validate_rules

NOT_FOUND = OpenApiResponse(description="No such segment in this workspace.")
RULES_HELP = (
    'A group {"match": "all"|"any", "negate": false, "conditions": [...]}; a condition has a "kind" '
    "(attribute, list, tag, consent, event, facts, rfm_segment, lifecycle_stage) and its own keys."
)


@extend_schema_field({"type": "object", "description": RULES_HELP})
class RulesField(serializers.JSONField):
    """A rule tree: always a JSON object (the compiler names each problem inside it)."""


class SegmentSerializer(serializers.ModelSerializer[Segment]):
    rules = RulesField(help_text=RULES_HELP)
    refreshing = serializers.SerializerMethodField(help_text="A refresh of the members is due and has not run yet.")

    class Meta:
        model = Segment
        fields = [
            "id", "name", "description", "rules", "member_count", "refreshed_at", "refreshing", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_refreshing(self, segment: Segment) -> bool:
        return selectors.refresh_pending(segment)


class SegmentInputSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    rules = RulesField(help_text=RULES_HELP)


class RulesSerializer(serializers.Serializer[dict[str, Any]]):
    rules = RulesField(help_text=RULES_HELP)


class SegmentMemberSerializer(serializers.ModelSerializer[SegmentMembership]):
    contact = ContactSerializer()

    class Meta:
        model = SegmentMembership
        fields = ["id", "contact", "entered_at"]
        read_only_fields = fields


class SegmentListView(AudiencesAPIView, generics.ListAPIView[Segment]):
    """The workspace's segments, newest first (cursor-paginated)."""

    serializer_class = SegmentSerializer

    def get_queryset(self) -> QuerySet[Segment]:
        return selectors.segments(workspace=self.workspace)

    @extend_schema(operation_id="segments_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="segments_create",
        description="Create a segment; its members are computed by a background refresh (see `refreshing`).",
        request=SegmentInputSerializer,
        responses={201: SegmentSerializer},
    )
    def post(self, request: Request) -> Response:
        body = SegmentInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        segment = services.segment_save(workspace=self.workspace, **body.validated_data)
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(AudiencesAPIView):
    @extend_schema(operation_id="segments_get", responses={200: SegmentSerializer, 404: NOT_FOUND})
    def get(self, request: Request, segment_id: int) -> Response:
        return Response(SegmentSerializer(selectors.segment_get(workspace=self.workspace, segment_id=segment_id)).data)

    @extend_schema(
        operation_id="segments_update",
        description="Change the given fields; new rules refresh the members in the background.",
        request=SegmentInputSerializer(partial=True),
        responses={200: SegmentSerializer, 404: NOT_FOUND},
    )
    def patch(self, request: Request, segment_id: int) -> Response:
        current = selectors.segment_get(workspace=self.workspace, segment_id=segment_id)
        body = SegmentInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changes = {"name": current.name, "description": current.description, "rules": current.rules}
        changes.update(body.validated_data)
        segment = services.segment_save(workspace=self.workspace, segment_id=segment_id, **changes)
        return Response(SegmentSerializer(segment).data)

    @extend_schema(
        operation_id="segments_delete", responses={204: OpenApiResponse(description="Deleted."), 404: NOT_FOUND}
    )
    def delete(self, request: Request, segment_id: int) -> Response:
        services.segment_delete(workspace=self.workspace, segment_id=segment_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentMembersView(AudiencesAPIView, generics.ListAPIView[SegmentMembership]):
    """The segment's current members with the time each entered, newest first (cursor-paginated)."""

    serializer_class = SegmentMemberSerializer

    def get_queryset(self) -> QuerySet[SegmentMembership]:
        segment = selectors.segment_get(workspace=self.workspace, segment_id=self.kwargs["segment_id"])
        return selectors.segment_members(segment=segment).order_by("-id")

    @extend_schema(operation_id="segments_members", responses={200: SegmentMemberSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SegmentCountView(AudiencesAPIView):
    @extend_schema(
        operation_id="segments_count",
        summary="Count the contacts a rule tree matches now",
        description=(
            "For previews while rules are edited; nothing is saved. An invalid tree is a 400 naming each problem."
        ),
        request=RulesSerializer,
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        body = RulesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rules = validate_rules(workspace=self.workspace, rules=body.validated_data["rules"])
        except DjangoValidationError as error:
            raise services.prefixed(error) from error
        count = selectors.segment_count(workspace=self.workspace, rules=rules)
        return Response({"count": count, "rules": rules})
