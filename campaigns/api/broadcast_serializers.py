"""Serializers of the broadcasts API: the input's shape (unknown keys refused); the rules (ids of
this workspace, what scheduling needs) are the services', whose errors come back by field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.broadcast_models import MAX_PREHEADER_CHARS, Broadcast, BroadcastStatus, SendMode
from campaigns.broadcasts.selectors import Progress
from campaigns.models import SendPriority
from esp.api.strict import RefuseUnknownFields


def _ids() -> serializers.ListField:
    return serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=100, required=False)


def _tags() -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=64), max_length=100, required=False)


class WallClockField(serializers.DateTimeField):
    """A date and time with no offset: read in each contact's own zone. One with an offset is
    refused rather than silently converted (10:00+02:00 is not "10:00 for everyone")."""

    def to_internal_value(self, value: Any) -> dt.datetime:
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                raise serializers.ValidationError(
                    _(
                        "Give the wall clock without an offset, e.g. 2026-12-10T10:00:00: "
                        "each contact gets it then in their own zone."
                    )
                )
        return super().to_internal_value(value)


class BroadcastInputSerializer(RefuseUnknownFields):
    name = serializers.CharField(max_length=200, required=False)
    include_lists = _ids()
    include_segments = _ids()
    include_tags = _tags()
    exclude_lists = _ids()
    exclude_segments = _ids()
    exclude_tags = _tags()
    template = serializers.IntegerField(min_value=1, required=False, help_text="An email template's id.")
    subject = serializers.CharField(
        max_length=998, required=False, allow_blank=True, help_text="Replaces the template's subject; empty: its own."
    )
    preheader = serializers.CharField(
        max_length=MAX_PREHEADER_CHARS,
        required=False,
        allow_blank=True,
        help_text="Replaces the template's preheader (the inbox preview line); empty: its own.",
    )
    sender = serializers.IntegerField(min_value=1, required=False, help_text="A sender identity's id.")
    provider = serializers.IntegerField(min_value=1, required=False, help_text="A provider's id.")
    track_opens = serializers.BooleanField(
        required=False, allow_null=True, help_text="null: as the workspace's delivery settings say."
    )
    track_clicks = serializers.BooleanField(
        required=False, allow_null=True, help_text="null: as the workspace's delivery settings say."
    )
    utm_parameters = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=200),
        required=False,
        help_text='Added to tracked links over the workspace\'s own, e.g. {"utm_campaign": "spring-sale"}.',
    )
    send_mode = serializers.ChoiceField(choices=SendMode.values, required=False)
    send_at = serializers.DateTimeField(required=False, help_text="With send_mode=at: the moment (with its offset).")
    local_at = WallClockField(
        required=False,
        help_text="With send_mode=local: the wall-clock date and time each contact gets it in their own zone "
        "(no offset: 2026-12-10T10:00:00).",
    )
    throttle_hours = serializers.IntegerField(min_value=0, max_value=72, required=False)
    priority = serializers.ChoiceField(choices=SendPriority.values, required=False)


class ProgressSerializer(serializers.Serializer[Progress]):
    total = serializers.IntegerField()
    queued = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    in_doubt = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    skipped_by_reason = serializers.DictField(child=serializers.IntegerField())


class BroadcastSerializer(serializers.ModelSerializer[Broadcast]):
    status = serializers.ChoiceField(choices=BroadcastStatus.values, read_only=True)
    local_at = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Broadcast
        fields = [
            "id", "name", "status", "include_lists", "include_segments", "include_tags", "exclude_lists",
            "exclude_segments", "exclude_tags", "template", "subject", "preheader", "sender", "provider",
            "track_opens", "track_clicks", "utm_parameters", "send_mode", "send_at",
            "local_at", "throttle_hours", "priority", "recipients", "excluded", "started_at", "finished_at",
            "paused_at", "created_at", "updated_at", "progress",
        ]  # fmt: skip
        read_only_fields = fields

    def get_progress(self, broadcast: Broadcast) -> dict[str, Any]:
        progress = self.context.get("progress", {}).get(broadcast.pk, Progress())
        return ProgressSerializer(progress).data  # type: ignore[return-value]

    @extend_schema_field(
        {"type": "string", "nullable": True, "example": "2026-12-10T10:00:00",
         "description": "With send_mode=local: the wall clock each contact gets it at, in their own zone (no offset)."}
    )  # fmt: skip
    def get_local_at(self, broadcast: Broadcast) -> str | None:
        return broadcast.local_at.replace(tzinfo=None).isoformat() if broadcast.local_at else None


class AudienceCountSerializer(serializers.Serializer[Any]):
    matching = serializers.IntegerField(help_text="In the included lists, segments and tags, not excluded.")
    without_consent = serializers.IntegerField(help_text="… of them subscribed to none of the lists that count.")
    suppressed = serializers.IntegerField(help_text="… subscribed, but suppressed or without an address.")
    recipients = serializers.IntegerField(help_text="Who the snapshot would make a message for now.")


class TestSendSerializer(RefuseUnknownFields):
    to = serializers.EmailField(help_text="Where the test goes.")
    contact = serializers.IntegerField(min_value=1, required=False, help_text="Personalise as this contact (id).")
