"""API of a broadcast's A/B split test: set it up on a draft (PUT), read its variants, figures,
confidence and decision (GET), remove it (DELETE), and pick the winner when the marketer picks
(POST …/ab/pick). The rules are the services' (campaigns.broadcasts.ab); their errors come back
as 400s by field (`variants.B`, `test_percent`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.api.broadcast_views import NOT_FOUND, BroadcastAPIView
from campaigns.broadcast_models import MAX_PREHEADER_CHARS, AbMetric, AbState, Broadcast, BroadcastVariant, WinnerMode
from campaigns.broadcasts import ab
from campaigns.broadcasts.ab_stats import ab_test_of, figures, verdict
from esp.api.strict import RefuseUnknownFields


class VariantInputSerializer(RefuseUnknownFields):
    subject = serializers.CharField(max_length=998, required=False, allow_blank=True)
    preheader = serializers.CharField(max_length=MAX_PREHEADER_CHARS, required=False, allow_blank=True)
    template = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    sender = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    send_delay_hours = serializers.IntegerField(min_value=0, max_value=48, required=False)


class AbInputSerializer(RefuseUnknownFields):
    variants = VariantInputSerializer(many=True, help_text="2 to 4: A, B, C, D in this order.")
    test_percent = serializers.IntegerField(min_value=1, max_value=90, required=False)
    metric = serializers.ChoiceField(choices=AbMetric.values, required=False)
    wait_hours = serializers.IntegerField(min_value=0, max_value=168, required=False)
    winner_mode = serializers.ChoiceField(choices=WinnerMode.values, required=False)


class PickSerializer(RefuseUnknownFields):
    letter = serializers.ChoiceField(choices=["A", "B", "C", "D"])


class VariantFiguresSerializer(serializers.Serializer[Any]):
    letter = serializers.CharField()
    subject = serializers.CharField()
    preheader = serializers.CharField()
    template = serializers.IntegerField(allow_null=True)
    sender = serializers.IntegerField(allow_null=True)
    send_delay_hours = serializers.IntegerField()
    messages = serializers.IntegerField()
    sent = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="The winning metric's rate, 0–1.")
    chance_to_be_best = serializers.FloatField(allow_null=True)


class AbResultSerializer(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=AbState.values)
    test_percent = serializers.IntegerField()
    metric = serializers.ChoiceField(choices=AbMetric.values)
    wait_hours = serializers.IntegerField()
    winner_mode = serializers.ChoiceField(choices=WinnerMode.values)
    variants = VariantFiguresSerializer(many=True)
    leader = serializers.CharField(help_text="The variant with the best rate now; empty when none leads.")
    confidence = serializers.FloatField(allow_null=True)
    significant = serializers.BooleanField()
    verdict = serializers.CharField(help_text="The figures in words, saying when a difference may be chance.")
    winner = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField()
    rest_recipients = serializers.IntegerField()


NO_TEST = OpenApiResponse(description="No such broadcast, or it has no A/B test.")


class AbResultMixin:
    def result(self, broadcast: Broadcast) -> Response:
        test = ab_test_of(broadcast)
        if test is None:
            raise exceptions.NotFound(_("This broadcast has no A/B test."))
        variants = list(BroadcastVariant.objects.filter(broadcast=broadcast).order_by("letter"))
        found = figures(test=test, letters=[v.letter for v in variants])
        said = verdict(found, test.metric)
        by_letter = {f.letter: f for f in found.variants}
        rows = []
        for variant in variants:
            row = by_letter[variant.letter]
            rows.append({
                "letter": variant.letter, "subject": variant.subject, "preheader": variant.preheader,
                "template": variant.template_id,
                "sender": variant.sender_id, "send_delay_hours": variant.send_delay_hours,
                **{k: v for k, v in asdict(row).items() if k in ("messages", "sent", "opened", "clicked")},
                "rate": row.rate(test.metric), "chance_to_be_best": said.chances.get(variant.letter),
            })  # fmt: skip
        body = {
            "state": test.state, "test_percent": test.test_percent, "metric": test.metric,
            "wait_hours": test.wait_hours, "winner_mode": test.winner_mode, "variants": rows,
            "leader": said.leader, "confidence": said.confidence, "significant": said.significant,
            "verdict": said.words, "winner": test.winner, "decided_at": test.decided_at,
            "decision_reason": test.decision_reason, "rest_recipients": test.rest_recipients,
        }  # fmt: skip
        return Response(AbResultSerializer(body).data)


class BroadcastAbView(AbResultMixin, BroadcastAPIView):
    @extend_schema(operation_id="broadcasts_ab_get", summary="The A/B test: variants, figures, confidence, decision",
                   responses={200: AbResultSerializer, 404: NO_TEST})  # fmt: skip
    def get(self, request: Request, broadcast_id: int) -> Response:
        return self.result(self.get_broadcast(broadcast_id))

    @extend_schema(
        operation_id="broadcasts_ab_set",
        summary="Set up (or replace) the A/B test of a draft",
        description="A variant's empty fields are the broadcast's own. 400 by field: `variants.B`, `test_percent`.",
        request=AbInputSerializer,
        responses={200: AbResultSerializer, 404: NOT_FOUND},
    )
    def put(self, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        body = AbInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        variants = [
            ab.VariantInput(**{k: v for k, v in item.items() if v is not None}) for item in data.pop("variants")
        ]
        ab.ab_configure(workspace=self.workspace, broadcast_id=broadcast.pk, data=ab.AbInput(variants=variants, **data))
        return self.result(broadcast)

    @extend_schema(operation_id="broadcasts_ab_delete", summary="Remove the A/B test of a draft",
                   responses={204: OpenApiResponse(description="Removed."), 404: NOT_FOUND})  # fmt: skip
    def delete(self, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        ab.ab_remove(workspace=self.workspace, broadcast_id=broadcast.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BroadcastAbPickView(AbResultMixin, BroadcastAPIView):
    @extend_schema(
        operation_id="broadcasts_ab_pick",
        summary="Pick the winner (a test the marketer decides); the rest gets it",
        request=PickSerializer,
        responses={200: AbResultSerializer, 404: NO_TEST},
    )
    def post(self, request: Request, broadcast_id: int) -> Response:
        broadcast = self.get_broadcast(broadcast_id)
        body = PickSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ab.ab_pick(workspace=self.workspace, broadcast_id=broadcast.pk, letter=body.validated_data["letter"], user=None)
        return self.result(broadcast)
