from __future__ import annotations

from rest_framework import serializers

from esp.models import ApiKey, OutboxMessage, Workspace


class WorkspaceSerializer(serializers.ModelSerializer[Workspace]):
    class Meta:
        model = Workspace
        fields = ["id", "name", "slug", "time_zone", "default_from_name", "default_from_email", "postal_address"]


class ApiKeyInfoSerializer(serializers.ModelSerializer[ApiKey]):
    class Meta:
        model = ApiKey
        fields = ["name", "prefix", "scopes", "created_at", "last_used_at"]


class WhoAmISerializer(serializers.Serializer[dict[str, object]]):
    workspace = WorkspaceSerializer()
    api_key = ApiKeyInfoSerializer(allow_null=True, help_text="Empty when called with a browser session.")


class OutboxMessageSerializer(serializers.ModelSerializer[OutboxMessage]):
    class Meta:
        model = OutboxMessage
        fields = ["id", "from_email", "to", "subject", "text_body", "html_body", "headers", "created_at"]
