"""The builder's side panel: one form per kind of step, turning what the marketer typed into the
step's settings and back.

A form only checks what it must to build the JSON (a number is a number); what the settings
mean (the template exists, the percentages add up, the event is named) is the publish check's
(automations/steps), shown on the step while the draft keeps it. So a half-filled step is saved
as it is and nothing typed is lost. A kind without a form of its own (a plugin's) is edited as
JSON.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.segments.event_conditions import NUMERIC_PROPERTY_OPERATORS, PROPERTY_OPERATORS
from audiences.segments.operators import Op, operator_label
from audiences.segments.values import ValueType
from audiences.segments.widgets import RuleTreeTextarea, rule_tree_is_empty
from automations.forms import json_field, pretty
from automations.steps.common import UNITS
from automations.steps.split import MAX_BRANCHES
from automations.steps.update_contact import ACTIONS as UPDATE_ACTIONS
from automations.widgets import PropertyFiltersTextarea

UNIT_CHOICES = [
    ("minutes", gettext_lazy("minutes")),
    ("hours", gettext_lazy("hours")),
    ("days", gettext_lazy("days")),
]
assert {u for u, _l in UNIT_CHOICES} == set(UNITS)
WEEKDAY_CHOICES = [
    (1, gettext_lazy("Monday")),
    (2, gettext_lazy("Tuesday")),
    (3, gettext_lazy("Wednesday")),
    (4, gettext_lazy("Thursday")),
    (5, gettext_lazy("Friday")),
    (6, gettext_lazy("Saturday")),
    (7, gettext_lazy("Sunday")),
]
UPDATE_LABELS = {
    "tag": gettext_lazy("Add a tag"),
    "untag": gettext_lazy("Remove a tag"),
    "set": gettext_lazy("Set a field"),
    "subscribe": gettext_lazy("Subscribe to a list"),
    "unsubscribe": gettext_lazy("Unsubscribe from a list"),
}


def property_value(operator: str, raw: str) -> Any:
    """What a marketer typed as a property filter's value, typed the way the operator compares
    it: numbers for "greater than", a list for "in", two values for "between", none for "is
    set". Text that is no number stays text: the publish check says what is wrong with it."""

    def number(text: str) -> Any:
        try:
            value = float(text)
        except ValueError:
            return text
        return int(value) if value.is_integer() and "." not in text else value

    raw = raw.strip()
    if operator in (Op.IS_SET, Op.NOT_SET):
        return None
    if operator in (Op.IN, Op.NOT_IN):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if operator == Op.BETWEEN:
        return [number(item.strip()) for item in raw.split(",")][:2]
    if operator in NUMERIC_PROPERTY_OPERATORS:
        return number(raw)
    return raw


class StepForm(forms.Form):
    """The fields every step has; a kind's form adds its own and says how they map."""

    name = forms.CharField(
        label=gettext_lazy("Name on the card"),
        required=False,
        max_length=200,
        help_text=gettext_lazy("Optional: how this step is called in reports."),
    )

    def __init__(
        self,
        *args: Any,
        choices: dict[str, list[tuple[Any, Any]]] | None = None,
        step: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # The step as saved: what the form does not show (a second event check) is kept from it.
        self.step = step or {}
        for name, options in (choices or {}).items():
            if name in self.fields:
                field = self.fields[name]
                assert isinstance(field, forms.ChoiceField)
                field.choices = options

    @classmethod
    def initial_for(cls, step: dict[str, Any]) -> dict[str, Any]:
        return {name: step.get(name) for name in cls.base_fields}

    def settings(self) -> dict[str, Any]:
        """The step's settings from the cleaned form (empty values left out)."""
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "", [])}

    def _json(self, name: str) -> Any:
        raw = (self.cleaned_data.get(name) or "").strip()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            self.add_error(name, _("Not valid JSON: %(error)s") % {"error": error})
            return None


class SendForm(StepForm):
    template = forms.TypedChoiceField(
        label=gettext_lazy("Email template"), required=False, coerce=int, empty_value=None
    )
    subject = forms.CharField(
        label=gettext_lazy("Subject"),
        required=False,
        max_length=998,
        help_text=gettext_lazy("Empty: the template's own subject. Personalise with {{ contact.first_name }}."),
    )


class WaitForm(StepForm):
    amount = forms.IntegerField(label=gettext_lazy("Wait"), min_value=0, required=False)
    unit = forms.ChoiceField(label=gettext_lazy("Unit"), choices=UNIT_CHOICES, initial="days")


class WaitUntilForm(StepForm):
    time = forms.CharField(
        label=gettext_lazy("Time of day (the contact's local time)"),
        max_length=5,
        widget=forms.TimeInput(attrs={"type": "time"}),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=gettext_lazy("On these weekdays (none: the next day at that time)"),
        choices=WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    attribute = forms.ChoiceField(label=gettext_lazy("Or: a date of the contact"), required=False)
    offset_days = forms.IntegerField(
        label=gettext_lazy("Days before (−) or after (+) that date"), required=False, min_value=-365, max_value=365
    )
    anniversary = forms.BooleanField(label=gettext_lazy("Every year (its next anniversary)"), required=False)

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        settings: dict[str, Any] = {"time": data.get("time") or ""}
        if data.get("name"):
            settings["name"] = data["name"]
        if data.get("attribute"):
            settings["attribute"] = data["attribute"]
            if data.get("offset_days"):
                settings["offset_days"] = data["offset_days"]
            if data.get("anniversary"):
                settings["anniversary"] = True
        elif data.get("weekdays"):
            settings["weekdays"] = sorted(data["weekdays"])
        return settings


class WaitForEventForm(StepForm):
    event = forms.CharField(
        label=gettext_lazy("Event to wait for"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"list": "known-events", "placeholder": "Order Completed"}),
    )
    key_property = forms.CharField(
        label=gettext_lazy("Only with the same value of this property as the entry"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("e.g. cart_id: only the order of this cart answers."),
        widget=forms.TextInput(attrs={"placeholder": "cart_id"}),
    )
    timeout_amount = forms.IntegerField(label=gettext_lazy("Wait at most"), min_value=0, required=False)
    timeout_unit = forms.ChoiceField(label=gettext_lazy("Unit"), choices=UNIT_CHOICES, initial="days")
    where = forms.CharField(
        label=gettext_lazy("Only events whose properties match"),
        required=False,
        widget=PropertyFiltersTextarea(),
    )

    @classmethod
    def initial_for(cls, step: dict[str, Any]) -> dict[str, Any]:
        return {**super().initial_for(step), "where": pretty(step.get("where"))}

    def settings(self) -> dict[str, Any]:
        settings = super().settings()
        settings.pop("where", None)
        where = self._json("where")
        if where:
            settings["where"] = where
        return settings


class ConditionForm(StepForm):
    # Drawn by the segment builder (one component on every page that edits rules).
    rules = forms.CharField(
        label=gettext_lazy("The contact matches these rules"),
        required=False,
        help_text=gettext_lazy("The same rules as a segment's."),
        widget=RuleTreeTextarea(attrs={"rows": 4}),
    )
    event = forms.CharField(
        label=gettext_lazy("… and did this event since entering the series"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"list": "known-events", "placeholder": "Order Completed"}),
    )
    event_key_property = forms.CharField(
        label=gettext_lazy("with the same value of this property as the entry"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "cart_id"}),
    )
    entry_property = forms.CharField(
        label=gettext_lazy("… and the entry (the trigger event) has the property"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "total"}),
    )
    entry_operator = forms.ChoiceField(label=gettext_lazy("Comparison"), required=False)
    entry_value = forms.CharField(
        label=gettext_lazy("Value"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("For “between”: two values, comma-separated; for “in”: a comma-separated list."),
    )
    email_step = forms.ChoiceField(label=gettext_lazy("… and engaged with the email of step"), required=False)
    email_action = forms.ChoiceField(
        label=gettext_lazy("Engagement"),
        required=False,
        choices=[("opened", gettext_lazy("opened it")), ("clicked", gettext_lazy("clicked in it"))],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        operator_field = self.fields["entry_operator"]
        assert isinstance(operator_field, forms.ChoiceField)
        operator_field.choices = [
            (op, operator_label(ValueType.NUMBER if op in NUMERIC_PROPERTY_OPERATORS else ValueType.TEXT, op))
            for op in PROPERTY_OPERATORS
        ]

    @classmethod
    def initial_for(cls, step: dict[str, Any]) -> dict[str, Any]:
        events = step.get("events_since_entry") or [{}]
        emails = step.get("email") or [{}]
        entry = (step.get("entry_where") or [{}])[0]
        value = entry.get("value")
        return {
            "entry_property": entry.get("property", ""),
            "entry_operator": entry.get("operator", "gt"),
            "entry_value": ", ".join(str(v) for v in value)
            if isinstance(value, list)
            else (value if value is not None else ""),
            "name": step.get("name", ""),
            "rules": pretty(step.get("rules")),
            "event": events[0].get("event", ""),
            "event_key_property": events[0].get("key_property", ""),
            "email_step": emails[0].get("step", ""),
            "email_action": emails[0].get("action", "opened"),
        }

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        settings: dict[str, Any] = {"name": data.get("name") or ""}
        rules = self._json("rules")
        if rules and not rule_tree_is_empty(rules):
            settings["rules"] = rules
        # The form edits the first check of each sort; further ones (set through the API) stay.
        events = list(self.step.get("events_since_entry") or [{}])
        if data.get("event"):
            first = events[0] if isinstance(events[0], dict) else {}
            events[0] = {
                "event": data["event"],
                "where": first.get("where", []) if first.get("event") == data["event"] else [],
                "key_property": data.get("event_key_property") or "",
            }
        else:
            events = events[1:]
        if events:
            settings["events_since_entry"] = events
        emails = list(self.step.get("email") or [{}])
        if data.get("email_step"):
            emails[0] = {"step": data["email_step"], "action": data.get("email_action") or "opened"}
        else:
            emails = emails[1:]
        if emails:
            settings["email"] = emails
        entry_where = list(self.step.get("entry_where") or [{}])
        if data.get("entry_property"):
            entry_where[0] = {
                "property": data["entry_property"],
                "operator": data.get("entry_operator") or "eq",
                "value": property_value(data.get("entry_operator") or "eq", data.get("entry_value") or ""),
            }
        else:
            entry_where = entry_where[1:]
        if entry_where:
            settings["entry_where"] = entry_where
        return settings


class SplitForm(StepForm):
    """Up to MAX_BRANCHES rows of percent and name; a row with no percent is no branch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for index in range(MAX_BRANCHES):
            self.fields[f"percent_{index}"] = forms.IntegerField(
                label=gettext_lazy("Share %"), required=False, min_value=0, max_value=100
            )
            self.fields[f"branch_name_{index}"] = forms.CharField(
                label=gettext_lazy("Branch name"), required=False, max_length=60
            )

    @classmethod
    def initial_for(cls, step: dict[str, Any]) -> dict[str, Any]:
        initial: dict[str, Any] = {"name": step.get("name", "")}
        for index, branch in enumerate(step.get("branches") or []):
            initial[f"percent_{index}"] = branch.get("percent")
            initial[f"branch_name_{index}"] = branch.get("name", "")
        return initial

    def branch_rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[f"percent_{i}"], self[f"branch_name_{i}"]) for i in range(MAX_BRANCHES)]

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        branches = []
        for index in range(MAX_BRANCHES):
            if data.get(f"percent_{index}") is not None:
                name = data.get(f"branch_name_{index}")
                branches.append({"percent": data[f"percent_{index}"], **({"name": name} if name else {})})
        return {"name": data.get("name") or "", "branches": branches}


class UpdateContactForm(StepForm):
    action = forms.ChoiceField(label=gettext_lazy("Change"), choices=[(a, UPDATE_LABELS[a]) for a in UPDATE_ACTIONS])
    tag = forms.CharField(label=gettext_lazy("Tag"), required=False, max_length=100)
    field = forms.ChoiceField(label=gettext_lazy("Field"), required=False)
    value = forms.CharField(label=gettext_lazy("Value"), required=False, max_length=1000)
    list = forms.TypedChoiceField(label=gettext_lazy("List"), required=False, coerce=int, empty_value=None)

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        action = data["action"]
        wanted = {"tag": ("tag",), "untag": ("tag",), "set": ("field", "value"), "subscribe": ("list",)}
        wanted["unsubscribe"] = ("list",)
        settings: dict[str, Any] = {"name": data.get("name") or "", "action": action}
        for name in wanted[action]:
            settings[name] = data.get(name) if data.get(name) is not None else ""
        return settings


class WebhookForm(StepForm):
    url = forms.CharField(
        label=gettext_lazy("URL to call (HTTPS)"),
        required=False,
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://shop.example.com/hooks/esp"}),
    )


class NotifyForm(StepForm):
    to = forms.CharField(
        label=gettext_lazy("Send to"),
        required=False,
        max_length=254,
        help_text=gettext_lazy("An address, or empty for the workspace's owners."),
    )
    subject = forms.CharField(label=gettext_lazy("Subject"), required=False, max_length=200)
    text = forms.CharField(label=gettext_lazy("Text"), required=False, widget=forms.Textarea(attrs={"rows": 4}))

    @classmethod
    def initial_for(cls, step: dict[str, Any]) -> dict[str, Any]:
        initial = super().initial_for(step)
        if initial.get("to") == "owners":
            initial["to"] = ""
        return initial

    def settings(self) -> dict[str, Any]:
        settings = super().settings()
        settings.setdefault("to", "owners")
        return settings


class ExitForm(StepForm):
    pass


class JsonStepForm(StepForm):
    """A kind without a form of its own: its settings as JSON."""

    settings_json = json_field(gettext_lazy("Settings (JSON)"))

    @classmethod
    def initial_for(cls, step: dict[str, Any]) -> dict[str, Any]:
        own = {k: v for k, v in step.items() if k not in ("key", "type", "name", "next", "yes", "no")}
        return {"name": step.get("name", ""), "settings_json": pretty(own)}

    def settings(self) -> dict[str, Any]:
        value = self._json("settings_json")
        if value is not None and not isinstance(value, dict):
            self.add_error("settings_json", _("Expected an object."))
            value = None
        return {"name": self.cleaned_data.get("name") or "", **(value or {})}


STEP_FORMS: dict[str, type[StepForm]] = {
    "send": SendForm,
    "wait": WaitForm,
    "wait_until": WaitUntilForm,
    "wait_for_event": WaitForEventForm,
    "condition": ConditionForm,
    "split": SplitForm,
    "update_contact": UpdateContactForm,
    "webhook": WebhookForm,
    "notify": NotifyForm,
    "exit": ExitForm,
}


def form_for(kind: str) -> type[StepForm]:
    return STEP_FORMS.get(kind, JsonStepForm)
