"""Serializers of the campaigns API: the transactional send request, and a message with its
status and events."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Message, MessageEvent, MessageSource


class MessageContactSerializer(serializers.Serializer[dict[str, Any]]):
    email = serializers.CharField(max_length=254, required=False, help_text="An unknown address becomes a contact.")
    id = serializers.IntegerField(required=False, help_text="A contact of the workspace.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("email" in attrs) == ("id" in attrs):
            raise serializers.ValidationError(_("Give either the contact's email or its id."))
        return attrs


class MessageSendSerializer(serializers.Serializer[dict[str, Any]]):
    template = serializers.IntegerField(help_text="The id of an email template of the workspace.")
    contact = MessageContactSerializer()
    data = serializers.DictField(  # type: ignore[assignment]  # the request's key, shadowing Serializer.data
        required=False,
        default=dict,
        help_text="What the template reads as `event` (order, cart, reset link, ...): a JSON object.",
    )
    idempotency_key = serializers.CharField(
        max_length=197,
        help_text=(
            "Your id of this message (e.g. the order number with its kind). A request with a key used before "
            "sends nothing and answers 200 with the first request's message."
        ),
    )


class MessageEventSerializer(serializers.ModelSerializer[MessageEvent]):
    class Meta:
        model = MessageEvent
        fields = ["type", "occurred_at", "url", "is_machine"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer[Message]):
    status = serializers.CharField(
        source="state", help_text="queued, claimed, sending, sent, failed, suppressed, skipped or in_doubt."
    )
    # Not an enum in the schema: "reason" names the suppression reasons' enum already.
    reason = serializers.CharField(
        help_text="Why a message was skipped, suppressed, delayed or failed (e.g. unsubscribed, daily_cap, "
        "quiet_hours, rejected); empty otherwise."
    )
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    template = serializers.IntegerField(source="template_id", allow_null=True)
    idempotency_key = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id", "status", "reason", "error", "message_class", "idempotency_key", "template", "contact", "to_email",
            "subject", "attempts", "created_at", "due_at", "sent_at", "delivery_status", "delivered_at",
            "opened_at", "clicked_at", "bounced_at", "complained_at", "unsubscribed_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_idempotency_key(self, message: Message) -> str | None:
        source = MessageSource.parse(message.source)
        return source.key if source.is_transactional else None


class MessageDetailSerializer(MessageSerializer):
    events = serializers.SerializerMethodField()

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "events"]
        read_only_fields = fields

    @extend_schema_field(MessageEventSerializer(many=True))
    def get_events(self, message: Message) -> list[dict[str, Any]]:
        events = self.context.get("events", [])
        return list(MessageEventSerializer(events, many=True).data)
