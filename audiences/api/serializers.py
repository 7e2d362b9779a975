"""Serializers of the audiences API. Output serializers describe what the API answers; input
serializers check the shape of a request and document it. The rules of a contact (address,
typed fields, tags) live once, in audiences.contacts.parse_contact, which the views call."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audiences.contacts import EMAIL_RE
from audiences.models import (
    Contact,
    CustomerFacts,
    CustomField,
    FieldType,
    Gender,
    MailingList,
    RfmSegment,
    Subscription,
    Suppression,
    SuppressionReason,
    normalise_email,
)

# --- contacts -------------------------------------------------------------------------------

CONTACT_OUTPUT_FIELDS = [
    "id", "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city", "country",
    "time_zone", "locale", "attributes", "tags", "source", "created_at", "updated_at",
]  # fmt: skip
# Fields a client may send back from a representation; they are ignored, not an error.
READ_ONLY_CONTACT_FIELDS = frozenset({"id", "source", "created_at", "updated_at", "subscriptions", "facts"})


class ContactSerializer(serializers.ModelSerializer[Contact]):
    attributes = serializers.DictField(help_text="Values of the workspace's custom fields, by key.")
    # Declared, not derived: DRF drops allow_blank from read-only model fields, and the
    # document would then leave "" (unknown) out of the enum.
    gender = serializers.ChoiceField(choices=Gender.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Contact
        fields = CONTACT_OUTPUT_FIELDS
        read_only_fields = CONTACT_OUTPUT_FIELDS


class ContactSubscriptionSerializer(serializers.ModelSerializer[Subscription]):
    list = serializers.IntegerField(source="mailing_list_id", help_text="The list's id.")

    class Meta:
        model = Subscription
        fields = ["list", "status"]
        read_only_fields = fields


class CustomerFactsSerializer(serializers.ModelSerializer[CustomerFacts]):
    """Purchase facts, RFM scores and lifecycle stage, computed from the contact's order events."""

    rfm_segment = serializers.ChoiceField(
        choices=RfmSegment.choices, allow_blank=True, read_only=True, help_text='"" until the contact has ordered.'
    )

    class Meta:
        model = CustomerFacts
        fields = [
            "orders_count", "revenue", "average_order_value", "refunds_count", "refunded", "first_order_at",
            "last_order_at", "products", "categories", "median_days_between_orders", "predicted_next_order_at",
            "recency_score", "frequency_score", "monetary_score", "rfm_segment", "lifecycle_stage",
        ]  # fmt: skip
        read_only_fields = fields


class ContactDetailSerializer(ContactSerializer):
    subscriptions = serializers.SerializerMethodField(help_text="The contact's lists, by list id.")
    facts = serializers.SerializerMethodField(help_text="Purchase facts, RFM scores and lifecycle stage.")

    class Meta(ContactSerializer.Meta):
        fields = [*CONTACT_OUTPUT_FIELDS, "subscriptions", "facts"]
        read_only_fields = fields

    @extend_schema_field(ContactSubscriptionSerializer(many=True))
    def get_subscriptions(self, contact: Contact) -> Any:
        rows = contact.subscriptions.filter(workspace_id=contact.workspace_id).order_by("mailing_list_id")
        return ContactSubscriptionSerializer(rows, many=True).data

    @extend_schema_field(CustomerFactsSerializer)
    def get_facts(self, contact: Contact) -> Any:
        # A contact that never ordered has no row: shown as the prospect it is.
        facts = CustomerFacts.objects.filter(workspace_id=contact.workspace_id, contact=contact).first()
        return CustomerFactsSerializer(facts or CustomerFacts(contact=contact, workspace_id=contact.workspace_id)).data


class ContactInputSerializer(serializers.Serializer[dict[str, Any]]):
    """The documented shape of a contact payload. Validation itself is parse_contact's (the
    same for API items and CSV rows); custom fields may also be given at the top level by key."""

    email = serializers.CharField(max_length=254)
    external_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    city = serializers.CharField(max_length=120, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True, help_text="ISO 3166 code")
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=16, required=False, allow_blank=True)
    attributes = serializers.DictField(required=False, help_text="Values of custom fields, by key.")
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)


class ContactChangeSerializer(ContactInputSerializer):
    """The fields to change; all optional."""

    email = serializers.CharField(max_length=254, required=False)


class BulkContactsSerializer(serializers.Serializer[dict[str, Any]]):
    contacts = serializers.ListField(
        child=serializers.JSONField(),
        max_length=1000,
        allow_empty=True,
        help_text="Up to 1000 contact objects, each of the shape of POST /contacts.",
    )
    update_existing = serializers.BooleanField(
        default=True, help_text="Update contacts that exist already; otherwise leave them unchanged."
    )
    list = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Subscribe the written contacts to this list."
    )
    consent_text = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The consent wording the contacts agreed to."
    )


class BulkItemResultSerializer(serializers.Serializer[dict[str, Any]]):
    index = serializers.IntegerField()
    # Not an enum in the schema: its name would collide with the subscription status enum.
    status = serializers.CharField(help_text="created, updated, unchanged or rejected")
    id = serializers.IntegerField(allow_null=True)
    # Output-only, for the schema: the metaclass moves declared fields off the class, so the
    # name does not shadow Serializer.errors at run time.
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class BulkResultSerializer(serializers.Serializer[dict[str, Any]]):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = BulkItemResultSerializer(many=True)


# --- lists ----------------------------------------------------------------------------------


class MailingListSerializer(serializers.ModelSerializer[MailingList]):
    class Meta:
        model = MailingList
        fields = ["id", "name", "description", "is_public", "double_opt_in", "created_at"]
        read_only_fields = ["id", "created_at"]
        # Uniqueness (case-insensitive, per workspace) is list_save's to judge.
        validators: list[Any] = []


class SubscriberCountsSerializer(serializers.Serializer[Any]):
    pending = serializers.IntegerField()
    subscribed = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()


class MailingListDetailSerializer(MailingListSerializer):
    # Read from the counts that selectors.list_get_with_counts annotates on the list.
    subscribers = SubscriberCountsSerializer(source="*", read_only=True, help_text="Subscriptions by status.")

    class Meta(MailingListSerializer.Meta):
        fields = [*MailingListSerializer.Meta.fields, "subscribers"]


class SubscribeSerializer(serializers.Serializer[dict[str, Any]]):
    email = serializers.CharField(max_length=254, required=False, help_text="Created as a contact when new.")
    contact_id = serializers.IntegerField(required=False)
    consent_text = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The consent wording the person agreed to."
    )

    def validate_email(self, value: str) -> str:
        email = normalise_email(value)
        if not EMAIL_RE.match(email):
            raise serializers.ValidationError(_("Enter a valid email address."))
        return email

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("email" in attrs) == ("contact_id" in attrs):
            raise serializers.ValidationError({"email": [_("Give either email or contact_id.")]})
        return attrs


class SubscriptionSerializer(serializers.ModelSerializer[Subscription]):
    list = serializers.IntegerField(source="mailing_list_id", read_only=True)
    contact = serializers.IntegerField(source="contact_id", read_only=True)

    class Meta:
        model = Subscription
        fields = ["list", "contact", "status", "created_at", "confirmed_at", "unsubscribed_at", "updated_at"]
        read_only_fields = fields


# --- custom fields --------------------------------------------------------------------------


class CustomFieldSerializer(serializers.ModelSerializer[CustomField]):
    type = serializers.ChoiceField(choices=FieldType.choices, default=FieldType.TEXT)
    choices = serializers.ListField(
        child=serializers.CharField(max_length=120),
        required=False,
        help_text="Required for fields of type choice; ignored for other types.",
    )

    class Meta:
        model = CustomField
        fields = ["id", "key", "label", "type", "choices", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"label": {"required": False}}
        # Uniqueness of the key per workspace is custom_field_save's to judge.
        validators: list[Any] = []


# --- suppressions ---------------------------------------------------------------------------

ADDABLE_REASONS = [(value, label) for value, label in SuppressionReason.choices if value != SuppressionReason.ERASED]


class SuppressionSerializer(serializers.ModelSerializer[Suppression]):
    class Meta:
        model = Suppression
        fields = ["id", "email", "email_hash", "reason", "note", "created_at"]
        read_only_fields = fields


class SuppressionInputSerializer(serializers.Serializer[dict[str, Any]]):
    email = serializers.CharField(max_length=254)
    reason = serializers.ChoiceField(choices=ADDABLE_REASONS, default=SuppressionReason.MANUAL)
    note = serializers.CharField(max_length=400, required=False, allow_blank=True, default="")

    def validate_email(self, value: str) -> str:
        email = normalise_email(value)
        if not EMAIL_RE.match(email):
            raise serializers.ValidationError(_("Enter a valid email address."))
        return email
