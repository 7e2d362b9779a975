"""Serializers of the series API. Input serializers check the shape of a request and refuse keys
they do not know; the rules of a series (trigger, goal, flow filter, the step graph) are the
services' to check, and their errors come back by path: `steps[welcome].template`,
`trigger.event`. Output serializers describe what the API answers."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from automations.models import Enrollment, EnrollmentState, ReEntry, Series, SeriesKind, SeriesVersion, TraceOutcome
from automations.services import PRIORITIES
from esp.api.strict import RefuseUnknownFields

# --- the JSON parts of a series ---------------------------------------------------------------

TRIGGER_HELP = (
    "What enrolls a contact. One of: "
    '{"type": "event", "event": "Checkout Started", "where": [{"property": "total", "operator": "gt", '
    '"value": 50}], "key": "cart_id"} (key: the event property that tells entries apart); '
    '{"type": "list", "list": 3} (joined a list); {"type": "segment", "segment": 7, "on": "enter"|"exit"}; '
    '{"type": "promo", "at": "2026-12-24T09:00:00+01:00", "segment": 7} (or "list": everyone once, at a '
    'time); {"type": "api"} (POST /series/{id}/enrollments only; any series can be entered that way). '
    "Default on create: api."
)
GOAL_HELP = (
    'An event that ends an enrollment as converted whenever it arrives: {"event": "Order Completed", '
    '"where": [...], "key": "cart_id"} (key: the goal event\'s property must equal the entry key). '
    "{} for no goal."
)
FLOW_FILTER_HELP = (
    "A segment rule tree every contact must match at entry and again before every send, e.g. "
    '{"match": "all", "negate": false, "conditions": [...]} as for segments. {} matches everyone.'
)
STEPS_HELP = (
    'The step tree: {"start": <key>, "steps": [...]}. Each step has a stable `key` (lower-case letters, '
    "digits, '-' and '_'), a `type` and its own fields, and names the steps that follow by key (`next`; "
    "`yes`/`no`; a split's `branches`); null ends the series for that contact. Types: send {template, "
    "subject?}, wait {amount, unit: minutes|hours|days}, wait_for_event {event, where?, key_property?, "
    "timeout_amount, timeout_unit, yes, no}, condition {rules?, events_since_entry?, email?, entry_where?, yes, "
    "no}, split {branches: [{name?, percent, next}]}, exit. Problems come back by path: `steps[<key>].<field>`."
)
STEPS_EXAMPLE = {
    "start": "welcome",
    "steps": [
        {"key": "welcome", "type": "send", "template": 12, "next": "two-days"},
        {"key": "two-days", "type": "wait", "amount": 2, "unit": "days", "next": "ordered"},
        {
            "key": "ordered",
            "type": "condition",
            "events_since_entry": [{"event": "Order Completed"}],
            "yes": None,
            "no": "coupon",
        },
        {"key": "coupon", "type": "send", "template": 13, "subject": "10% off, just for you"},
    ],
}


class JSONObjectField(serializers.JSONField):
    """A JSON object, and only that: what is inside is checked by the service, by path."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(_("Expected a JSON object."), code="invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "example": {"type": "event", "event": "Checkout Started", "key": "cart_id"}})
class TriggerField(JSONObjectField):
    pass


@extend_schema_field({"type": "object", "example": {"event": "Order Completed", "key": "cart_id"}})
class GoalField(JSONObjectField):
    pass


@extend_schema_field(
    {
        "type": "object",
        "example": {
            "match": "all",
            "negate": False,
            "conditions": [{"kind": "event", "event": "Order Completed", "operator": "gte", "count": 1}],
        },
    }
)
class FlowFilterField(JSONObjectField):
    pass


@extend_schema_field({"type": "object", "example": STEPS_EXAMPLE})
class StepsField(JSONObjectField):
    pass


@extend_schema_field({"type": "integer", "enum": list(PRIORITIES)})
class PriorityField(serializers.IntegerField):
    """10 promotional, 20 triggered, 30 transactional: under a frequency cap the higher goes."""

    def to_internal_value(self, data: Any) -> int:
        value = super().to_internal_value(data)
        if value not in PRIORITIES:
            raise serializers.ValidationError(
                _("Expected 10 (promotional), 20 (triggered) or 30 (transactional)."), code="invalid"
            )
        return value


# --- series ---------------------------------------------------------------------------------


class WebhookSecretSerializer(serializers.Serializer[Any]):
    webhook_secret = serializers.CharField(help_text="Verifies the X-ESP-Signature of the series' webhook calls.")


class SeriesFiguresSerializer(serializers.Serializer[Any]):
    entered_7d = serializers.IntegerField(help_text="Enrollments that began in the last 7 days.")
    active = serializers.IntegerField(help_text="Enrollments inside the series now.")
    converted_7d = serializers.IntegerField(help_text="Enrollments that reached the goal in the last 7 days.")


class SeriesSerializer(serializers.Serializer[Any]):
    """A series: its settings, versions and figures."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=SeriesKind.choices, read_only=True)
    # Not an enum in the schema: its name would collide with the subscription status enum.
    status = serializers.CharField(read_only=True, help_text="draft, live, paused or archived.")
    trigger = TriggerField(read_only=True, help_text=TRIGGER_HELP)
    flow_filter = FlowFilterField(read_only=True, help_text=FLOW_FILTER_HELP)
    goal = GoalField(read_only=True, help_text=GOAL_HELP)
    re_entry = serializers.ChoiceField(choices=ReEntry.choices, read_only=True)
    re_entry_days = serializers.IntegerField(read_only=True, allow_null=True)
    priority = PriorityField(read_only=True)
    smart_sending = serializers.BooleanField(read_only=True)
    holdout_percent = serializers.IntegerField(read_only=True)
    live_version = serializers.SerializerMethodField(help_text="The number of the version people enter; null in draft.")
    draft_version = serializers.SerializerMethodField(
        help_text="The number of an unpublished version newer than the live one, if any."
    )
    figures = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When a promo's audience entered."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_live_version(self, series: Series) -> int | None:
        return series.live_version.number if series.live_version is not None else None

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_draft_version(self, series: Series) -> int | None:
        return self.context["drafts"].get(series.pk)  # type: ignore[no-any-return]

    @extend_schema_field(SeriesFiguresSerializer)
    def get_figures(self, series: Series) -> Any:
        return SeriesFiguresSerializer(self.context["figures"][series.pk]).data


class SeriesDetailSerializer(SeriesSerializer):
    steps_version = serializers.SerializerMethodField(help_text="The version `steps` are of: the draft, else the live.")
    steps = serializers.SerializerMethodField(help_text=STEPS_HELP)

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_steps_version(self, series: Series) -> int | None:
        version = self.context["latest"]
        return version.number if version is not None else None

    @extend_schema_field({"type": "object", "example": STEPS_EXAMPLE})
    def get_steps(self, series: Series) -> Any:
        version = self.context["latest"]
        return version.steps if version is not None else {"start": None, "steps": []}


class SeriesInputSerializer(RefuseUnknownFields):
    """A new series (in draft), or on PATCH the settings and steps to change. Steps change the
    draft: a published version is never changed, a new draft is made from it."""

    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=SeriesKind.choices, required=False)
    trigger = TriggerField(required=False, help_text=TRIGGER_HELP)
    flow_filter = FlowFilterField(required=False, help_text=FLOW_FILTER_HELP)
    goal = GoalField(required=False, help_text=GOAL_HELP)
    re_entry = serializers.ChoiceField(
        choices=ReEntry.choices, required=False, help_text="once (ever), period (once per re_entry_days), always."
    )
    re_entry_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    priority = PriorityField(
        required=False, help_text="10 promotional, 20 triggered, 30 transactional; default by kind."
    )
    smart_sending = serializers.BooleanField(
        required=False, help_text="Skip marketing mail to a contact mailed within the workspace's window."
    )
    holdout_percent = serializers.IntegerField(
        min_value=0, max_value=50, required=False, help_text="Entrants kept out of all mail, to measure lift."
    )
    steps = StepsField(required=False, help_text=STEPS_HELP)


class PublishSerializer(RefuseUnknownFields):
    move_waiting = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Move people inside on older versions to the new one where it keeps their current step (same key "
            "and type): a shortened wait then applies to them. Others stay on their version."
        ),
    )
    move_steps = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=200,
        help_text=(
            "Keys of the draft's steps: move only the people standing on these steps (kept with the same key and "
            "type) to the new version, e.g. the waits whose new length should apply to those already waiting. "
            "`move_waiting` moves everyone on a kept step whatever this says. 400 on `move_steps` for a key the "
            "draft does not have."
        ),
    )


class ResumeSerializer(RefuseUnknownFields):
    skip_older_than_hours = serializers.IntegerField(
        min_value=1,
        max_value=8760,
        required=False,
        help_text="An email step that fell due more than this many hours ago is skipped (traced as stale).",
    )


# --- versions and steps ----------------------------------------------------------------------


class SeriesVersionSerializer(serializers.Serializer[SeriesVersion]):
    number = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    published_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="Null: the draft.")
    live = serializers.SerializerMethodField(help_text="The version new entrants get.")

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_live(self, version: SeriesVersion) -> bool:
        return bool(version.series.live_version_id == version.pk)


class SeriesVersionDetailSerializer(SeriesVersionSerializer):
    steps = StepsField(read_only=True, help_text=STEPS_HELP)


class StepCountsSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    type = serializers.CharField(help_text="Empty for a step only older versions have.")
    name = serializers.CharField()
    in_version = serializers.BooleanField(help_text="The step is in the version listed (else only in older ones).")
    reached = serializers.IntegerField(help_text="Enrollments that got to the step.")
    waiting_now = serializers.IntegerField(help_text="Live enrollments standing on the step now.")
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    held_out = serializers.IntegerField()
    converted = serializers.IntegerField()
    exited = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="Skips by reason.")
    branches = serializers.DictField(child=serializers.IntegerField(), help_text="Runs by branch taken.")


class SeriesStepsSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(allow_null=True, help_text="The version whose steps give the order.")
    steps = StepCountsSerializer(many=True)


# --- enrollments -----------------------------------------------------------------------------


class ContactRefSerializer(RefuseUnknownFields):
    """One contact of the workspace: by id, address or the shop's external id (exactly one)."""

    id = serializers.IntegerField(required=False, min_value=1)
    email = serializers.CharField(required=False, max_length=254)
    external_id = serializers.CharField(required=False, max_length=255)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(attrs) != 1:
            raise serializers.ValidationError(_("Give exactly one of the contact's id, email or external_id."))
        return attrs


class EnrollmentContactSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    email = serializers.CharField()
    external_id = serializers.CharField()


class TraceSerializer(serializers.Serializer[Any]):
    step = serializers.CharField(source="step_key", help_text="Empty for the entry.")
    ran_at = serializers.DateTimeField()
    outcome = serializers.ChoiceField(choices=TraceOutcome.choices)
    reason = serializers.CharField()
    branch = serializers.CharField()
    message = serializers.IntegerField(source="message_id", allow_null=True, help_text="The email it queued.")


class EnrollmentSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    series = serializers.IntegerField(source="series_id")
    version = serializers.IntegerField(source="version.number", help_text="The version it runs on.")
    contact = EnrollmentContactSerializer()
    key = serializers.CharField(source="entry_key", help_text="The entry key (e.g. the cart id).")
    data = serializers.DictField(source="entry_data", help_text="The entry's data, the emails' `event`.")  # type: ignore[assignment]
    state = serializers.ChoiceField(choices=EnrollmentState.choices)
    step = serializers.CharField(source="step_key", help_text="The step it stands on.")
    step_started_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True, help_text="When it runs next, unless an event comes first.")
    waiting_for = serializers.CharField(source="wait_event", help_text="The event it waits for, if any.")
    holdout = serializers.BooleanField(help_text="Held out: receives no email.")
    entered_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()


class EnrollmentDetailSerializer(EnrollmentSerializer):
    series_name = serializers.CharField(source="series.name")
    trace = serializers.SerializerMethodField(help_text="Every step run, oldest first: what happened and why.")

    @extend_schema_field(TraceSerializer(many=True))
    def get_trace(self, enrollment: Enrollment) -> Any:
        return TraceSerializer(self.context["traces"].get(enrollment.pk, []), many=True).data


class EnrollmentCreateSerializer(RefuseUnknownFields):
    contact = ContactRefSerializer()
    key = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Tells entries apart (e.g. a cart id): one live enrollment per contact and key.",
    )
    data = serializers.DictField(  # type: ignore[assignment]  # the request's key, shadowing Serializer.data
        required=False, default=dict, help_text="What the emails read as `event`: a JSON object."
    )


class EnrollmentEndSerializer(RefuseUnknownFields):
    reason = serializers.CharField(
        max_length=200, required=False, default="ended through the API", help_text="Kept as the end reason."
    )


class EnrollmentRefusedDetailSerializer(serializers.Serializer[Any]):
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="not_enrolled")
    message = serializers.CharField()
    reason = serializers.ChoiceField(choices=["not_live", "already_enrolled", "re_entry", "flow_filter"])
    enrollment = serializers.IntegerField(
        allow_null=True, help_text="already_enrolled: the live enrollment; re_entry: the earlier one."
    )


class EnrollmentRefusedSerializer(serializers.Serializer[Any]):
    error = EnrollmentRefusedDetailSerializer()


# --- dry run -----------------------------------------------------------------------------------


class DryRunInputSerializer(RefuseUnknownFields):
    contact = ContactRefSerializer()
    since = serializers.DateTimeField(
        required=False, help_text="Replay the contact's events from this time on; default: 30 days ago."
    )
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="The version to run; default: the draft if there is one, else live."
    )


class DryRunLineSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    entry = serializers.CharField(help_text='Which simulated enrollment: "#1 (cart_id A)".')
    step = serializers.CharField()
    what = serializers.CharField()
    why = serializers.CharField()
    future = serializers.BooleanField(help_text="After now: still to come.")


class DryRunSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(help_text="The version run; 0 when the series has no steps.")
    lines = DryRunLineSerializer(many=True)
    notes = serializers.ListField(child=serializers.CharField(), help_text="What the replay could not know.")
