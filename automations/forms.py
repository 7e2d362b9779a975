"""Forms of the series pages. They only shape what the browser posts; every rule is checked by
automations.services (the same checks as the API), and its errors are put back on the fields
here, by the paths the services name ("trigger.event", "steps[wait].amount")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audiences.segments.widgets import RuleTreeTextarea, rule_tree_is_empty
from automations.models import ReEntry, Series, SeriesKind
from automations.services import SeriesInput
from automations.triggers import TRIGGER_KINDS
from automations.widgets import PropertyFiltersTextarea
from campaigns.models import SendPriority

TRIGGER_LABELS = {
    "event": gettext_lazy("The contact does an event"),
    "list": gettext_lazy("The contact joins a list"),
    "segment": gettext_lazy("The contact enters or leaves a segment"),
    "promo": gettext_lazy("A promo start: everyone in a segment or list, once, at a time"),
    "api": gettext_lazy("Only through the API"),
}
# Which of the form's trigger fields each built-in kind reads; another registered kind takes
# its settings from the "other settings" JSON.
TRIGGER_FIELDS = {
    "event": ("event", "key", "where"),
    "list": ("list",),
    "segment": ("segment", "on"),
    "promo": ("at", "segment", "list"),
    "api": (),
}
JSON_ROWS = {"rows": 6, "spellcheck": "false", "class": "json"}


def json_field(label: Any, help_text: Any = "", rows: int = 6) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={**JSON_ROWS, "rows": rows}),
    )


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) if value not in (None, {}, []) else ""


class SeriesForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=SeriesKind.choices, initial=SeriesKind.TRIGGER)
    trigger_type = forms.ChoiceField(label=gettext_lazy("What starts it"))
    trigger_event = forms.CharField(
        label=gettext_lazy("Event name"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Checkout Started"}),
    )
    trigger_key = forms.CharField(
        label=gettext_lazy("Entry key (event property)"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("Tells entries apart: with cart_id, each cart is its own enrollment."),
        widget=forms.TextInput(attrs={"placeholder": "cart_id"}),
    )
    trigger_where = forms.CharField(
        label=gettext_lazy("Only events whose properties match"),
        required=False,
        help_text=gettext_lazy("e.g. total greater than 50. Empty: every such event."),
        widget=PropertyFiltersTextarea(),
    )
    trigger_list = forms.TypedChoiceField(label=gettext_lazy("List"), required=False, coerce=int, empty_value=None)
    trigger_segment = forms.TypedChoiceField(
        label=gettext_lazy("Segment"), required=False, coerce=int, empty_value=None
    )
    trigger_on = forms.ChoiceField(
        label=gettext_lazy("On"),
        required=False,
        choices=[("enter", gettext_lazy("entering the segment")), ("exit", gettext_lazy("leaving the segment"))],
    )
    trigger_at = forms.DateTimeField(
        label=gettext_lazy("Promo start (workspace time)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    trigger_other = json_field(
        gettext_lazy("Other trigger settings (JSON)"),
        gettext_lazy("For kinds of trigger without fields of their own here."),
        rows=3,
    )
    # Drawn by the segment builder (one component on every page that edits rules).
    flow_filter = forms.CharField(
        label=gettext_lazy("Flow filter: who may enter and stay"),
        required=False,
        help_text=gettext_lazy(
            "The same rules as a segment's, checked at entry and again before every email; "
            "no conditions lets everyone in."
        ),
        widget=RuleTreeTextarea(),
    )
    goal_event = forms.CharField(
        label=gettext_lazy("Goal event"),
        required=False,
        max_length=200,
        help_text=gettext_lazy("Whenever it arrives, the enrollment ends as converted. Empty: no goal."),
        widget=forms.TextInput(attrs={"placeholder": "Order Completed"}),
    )
    goal_key = forms.CharField(
        label=gettext_lazy("Goal keyed to the entry by"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("The goal event's property that must equal the entry key (e.g. cart_id)."),
    )
    goal_where = forms.CharField(
        label=gettext_lazy("Only goal events whose properties match"),
        required=False,
        widget=PropertyFiltersTextarea(),
    )
    re_entry = forms.ChoiceField(label=gettext_lazy("Re-entry"), choices=ReEntry.choices, initial=ReEntry.ONCE)
    re_entry_days = forms.IntegerField(label=gettext_lazy("Re-entry period (days)"), required=False)
    priority = forms.TypedChoiceField(
        label=gettext_lazy("Priority under the frequency cap"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", gettext_lazy("By the kind of series")), *SendPriority.choices],
    )
    smart_sending = forms.BooleanField(
        label=gettext_lazy("Smart sending: skip marketing mail to contacts mailed in the last hours"),
        required=False,
        initial=True,
    )
    holdout_percent = forms.IntegerField(
        label=gettext_lazy("Holdout %"),
        required=False,
        initial=0,
        help_text=gettext_lazy("Entrants kept out on purpose (they receive nothing), to measure the series' lift."),
    )
    steps = json_field(
        gettext_lazy("Steps (advanced, JSON)"),
        gettext_lazy(
            '{"start": "first", "steps": [{"key": "first", "type": "send", "template": 12, "next": "pause"}, …]}. '
            "Each error names its step: steps[pause].amount."
        ),
        rows=18,
    )

    def __init__(
        self,
        *args: Any,
        lists: list[tuple[int, str]],
        segments: list[tuple[int, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._set_choices("trigger_type", [(k, TRIGGER_LABELS.get(k, k)) for k in TRIGGER_KINDS])
        self._set_choices("trigger_list", [("", "—"), *lists])
        self._set_choices("trigger_segment", [("", "—"), *segments])

    def _set_choices(self, name: str, choices: list[tuple[Any, Any]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    @staticmethod
    def initial_for(series: Series, steps: dict[str, Any] | None) -> dict[str, Any]:
        trigger = series.trigger or {}
        goal = series.goal or {}
        known = set(TRIGGER_FIELDS.get(trigger.get("type", ""), ())) | {"type"}
        return {
            "name": series.name,
            "kind": series.kind,
            "trigger_type": trigger.get("type", "api"),
            "trigger_event": trigger.get("event", ""),
            "trigger_key": trigger.get("key", ""),
            "trigger_where": pretty(trigger.get("where")),
            "trigger_list": trigger.get("list"),
            "trigger_segment": trigger.get("segment"),
            "trigger_on": trigger.get("on", "enter"),
            "trigger_at": trigger.get("at", ""),
            "trigger_other": pretty({k: v for k, v in trigger.items() if k not in known}),
            "flow_filter": pretty(series.flow_filter),
            "goal_event": goal.get("event", ""),
            "goal_key": goal.get("key", ""),
            "goal_where": pretty(goal.get("where")),
            "re_entry": series.re_entry,
            "re_entry_days": series.re_entry_days,
            "priority": series.priority,
            "smart_sending": series.smart_sending,
            "holdout_percent": series.holdout_percent,
            "steps": pretty(steps) if steps and steps.get("steps") else "",
        }

    def _json(self, name: str, errors: dict[str, list[str]]) -> Any:
        raw = (self.cleaned_data.get(name) or "").strip()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            errors.setdefault(name, []).append(_("Not valid JSON: %(error)s") % {"error": error})
            return None

    def series_input(self) -> SeriesInput:
        """The posted series as the services take it; JSON that does not parse is a
        ValidationError keyed by the field, like the services' own."""
        data = self.cleaned_data
        errors: dict[str, list[str]] = {}
        kind = data["trigger_type"]
        fields = TRIGGER_FIELDS.get(kind)
        trigger: dict[str, Any] = {"type": kind}
        if fields is None:
            other = self._json("trigger_other", errors)
            if other is not None and not isinstance(other, dict):
                errors.setdefault("trigger_other", []).append(_("Expected an object."))
            elif other:
                trigger.update({k: v for k, v in other.items() if k != "type"})
        else:
            if "event" in fields:
                trigger["event"] = data.get("trigger_event") or ""
            if "key" in fields and data.get("trigger_key"):
                trigger["key"] = data["trigger_key"]
            if "where" in fields:
                where = self._json("trigger_where", errors)
                if where is not None:
                    trigger["where"] = where
            if kind == "list":
                trigger["list"] = data.get("trigger_list")
            if kind == "segment":
                trigger["segment"] = data.get("trigger_segment")
                trigger["on"] = data.get("trigger_on") or "enter"
            if kind == "promo":
                trigger["at"] = data["trigger_at"].isoformat() if data.get("trigger_at") else None
                if data.get("trigger_segment") is not None:
                    trigger["segment"] = data["trigger_segment"]
                if data.get("trigger_list") is not None:
                    trigger["list"] = data["trigger_list"]
        goal: dict[str, Any] = {}
        goal_where = self._json("goal_where", errors)
        if data.get("goal_event") or data.get("goal_key") or goal_where:
            goal = {"event": data.get("goal_event") or ""}
            if data.get("goal_key"):
                goal["key"] = data["goal_key"]
            if goal_where is not None:
                goal["where"] = goal_where
        flow_filter = self._json("flow_filter", errors)
        if rule_tree_is_empty(flow_filter):
            flow_filter = {}
        steps = self._json("steps", errors)
        if errors:
            raise ValidationError(errors)
        return SeriesInput(
            name=data["name"],
            kind=data["kind"],
            trigger=trigger,
            flow_filter=flow_filter if flow_filter is not None else {},
            goal=goal,
            re_entry=data["re_entry"],
            re_entry_days=data.get("re_entry_days"),
            priority=data.get("priority"),
            smart_sending=bool(data.get("smart_sending")),
            holdout_percent=data["holdout_percent"] if data.get("holdout_percent") is not None else 0,
            steps=steps,
        )


# Where a service's error path lands on the form: the first matching prefix wins.
ERROR_FIELDS = (
    ("trigger.type", "trigger_type"),
    ("trigger.event", "trigger_event"),
    ("trigger.key", "trigger_key"),
    ("trigger.where", "trigger_where"),
    ("trigger.list", "trigger_list"),
    ("trigger.segment", "trigger_segment"),
    ("trigger.on", "trigger_on"),
    ("trigger.at", "trigger_at"),
    ("trigger", "trigger_type"),
    ("goal.where", "goal_where"),
    ("goal.key", "goal_key"),
    ("goal", "goal_event"),
    ("flow_filter", "flow_filter"),
    ("steps", "steps"),
    ("start", "steps"),
)


def field_for(path: str, form: forms.Form) -> tuple[str | None, bool]:
    """The form field an error path belongs to, and whether the path must be shown with the
    message (a path inside a JSON field: "steps[pause].amount")."""
    if path in form.fields:
        return path, False
    for prefix, name in ERROR_FIELDS:
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            if name in ("trigger_type",) and path not in ("trigger", "trigger.type"):
                # A field of a registered trigger kind: its settings come from "other settings".
                return "trigger_other", True
            return name, path != prefix and name in ("trigger_where", "goal_where", "flow_filter", "steps")
    return None, True


class ResumeForm(forms.Form):
    skip_older_than_hours = forms.IntegerField(
        label=gettext_lazy("Skip email steps that fell due more than this many hours ago"),
        required=False,
        min_value=1,
        max_value=24 * 366,
        help_text=gettext_lazy("Empty: send everything that fell due while the series was paused."),
    )


@dataclass(frozen=True)
class ChangedWait:
    """A wait the draft changes, as the publish page offers it: apply it to those waiting now?"""

    key: str
    name: str
    before: str
    after: str
    waiting: int


MOVE_STEP_PREFIX = "move_step_"


class PublishForm(forms.Form):
    """One box per changed wait (move the people waiting there onto the new wait), then the
    box that moves everyone standing on a step the new version keeps."""

    move_waiting = forms.BooleanField(
        label=gettext_lazy(
            "Move people already inside to the new version where their step is kept (same key and kind)"
        ),
        required=False,
    )

    def __init__(self, *args: Any, waits: Sequence[ChangedWait] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for wait in waits:
            self.fields[MOVE_STEP_PREFIX + wait.key] = forms.BooleanField(
                required=False,
                label=ngettext(
                    "%(step)s: apply the new wait to the %(count)d person waiting here now",
                    "%(step)s: apply the new wait to the %(count)d people waiting here now",
                    wait.waiting,
                )
                % {"step": wait.name or wait.key, "count": wait.waiting},
                # Shown as HTML by the form's template: the words of the steps are escaped.
                help_text=_("Before: %(before)s. Now: %(after)s. Unticked, they finish the wait as it was.")
                % {"before": escape(wait.before), "after": escape(wait.after)},
            )
        if waits:
            self.fields["move_waiting"].help_text = _(
                "Ticked, everyone standing on a kept step moves, whichever waits above are ticked."
            )
            self.order_fields([MOVE_STEP_PREFIX + wait.key for wait in waits] + ["move_waiting"])

    def move_steps(self) -> list[str]:
        """The keys of the waits ticked."""
        return [
            name.removeprefix(MOVE_STEP_PREFIX)
            for name, value in self.cleaned_data.items()
            if name.startswith(MOVE_STEP_PREFIX) and value
        ]


class DryRunForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Contact's email address"), max_length=254)
    since = forms.DateField(
        label=gettext_lazy("Replay events since"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    version = forms.ChoiceField(
        label=gettext_lazy("Version"),
        required=False,
        choices=[("live", gettext_lazy("Live version")), ("draft", gettext_lazy("Draft"))],
        initial="live",
    )


class RecipeForm(forms.Form):
    recipe = forms.CharField(max_length=100)
