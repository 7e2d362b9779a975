"""Forms of the sending settings. A provider's form is built from its kind's declared
credential fields; secret fields never carry a value back to the page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy

from campaigns.models import MAX_SMART_SENDING_HOURS, DeliverySettings, ProviderKind
from campaigns.providers.registry import CredentialField, KindSpec
from esp.forms import add_service_errors

CREDENTIAL_PREFIX = "cred_"


class KindForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=ProviderKind.choices)


def _credential_field(field: CredentialField, *, stored: bool) -> forms.Field:
    help_text = field.help_text
    if field.secret and stored:
        help_text = gettext_lazy("Stored. Leave empty to keep it; type a new value to replace it.")
    common: dict[str, Any] = {"label": field.label, "help_text": help_text}
    if field.type == "boolean":
        return forms.BooleanField(required=False, **common)
    required = field.required and not (field.secret and stored)
    if field.type == "integer":
        return forms.IntegerField(required=required, min_value=1, **common)
    if field.secret:
        placeholder = "••••••••" if stored else ""
        widget = forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "placeholder": placeholder}
        )
        return forms.CharField(required=required, strip=True, widget=widget, **common)
    if field.type == "textarea":
        return forms.CharField(required=required, widget=forms.Textarea(attrs={"rows": 3}), **common)
    if field.type == "url":
        return forms.URLField(required=required, assume_scheme="https", **common)
    return forms.CharField(required=required, max_length=500, **common)


class ProviderForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    rate_limit = forms.IntegerField(
        label=gettext_lazy("Messages per second"),
        min_value=0,
        initial=0,
        help_text=gettext_lazy("Shared by all workers; 0 sends as fast as the workers can."),
    )

    def __init__(self, *args: Any, spec: KindSpec, stored: dict[str, Any] | None = None, **kwargs: Any) -> None:
        stored = stored or {}
        initial = dict(kwargs.pop("initial", None) or {})
        for field in spec.fields:
            if not field.secret:
                initial.setdefault(CREDENTIAL_PREFIX + field.key, stored.get(field.key, field.default))
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.spec = spec
        for field in spec.fields:
            self.fields[CREDENTIAL_PREFIX + field.key] = _credential_field(field, stored=bool(stored.get(field.key)))

    def credentials(self) -> dict[str, Any]:
        return {
            name.removeprefix(CREDENTIAL_PREFIX): value
            for name, value in self.cleaned_data.items()
            if name.startswith(CREDENTIAL_PREFIX)
        }

    def add_service_errors(self, error: ValidationError) -> None:
        add_service_errors(self, error, lambda key: key if key in self.fields else CREDENTIAL_PREFIX + key)


class SenderForm(forms.Form):
    from_name = forms.CharField(label=gettext_lazy("From name"), max_length=120)
    from_email = forms.EmailField(label=gettext_lazy("From address"))
    reply_to = forms.EmailField(
        label=gettext_lazy("Reply-to"), required=False, help_text=gettext_lazy("Empty: replies go to the From address.")
    )

    def add_service_errors(self, error: ValidationError) -> None:
        add_service_errors(self, error)


class UtmField(forms.CharField):
    """UTM parameters as key=value lines: shows a dict as lines, gives a dict back (the
    service checks the keys and values)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", gettext_lazy("UTM parameters"))
        kwargs.setdefault(
            "widget", forms.Textarea(attrs={"rows": 3, "placeholder": "utm_source=newsletter\nutm_medium=email"})
        )
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return "\n".join(f"{key}={text}" for key, text in value.items())
        return value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        parameters: dict[str, str] = {}
        for number, line in enumerate(str(super().to_python(value) or "").splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, text = line.partition("=")
            if not sep:
                raise ValidationError(
                    gettext_lazy("Line %(number)d: write key=value."), params={"number": number}, code="format"
                )
            parameters[key.strip().lower()] = text.strip()
        return parameters


class DeliverySettingsForm(forms.ModelForm[DeliverySettings]):
    utm_text = UtmField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "utm_source=newsletter\nutm_medium=email"}),
        help_text=gettext_lazy(
            "One key=value a line, added to tracked links that do not carry their own (keys start with utm_)."
        ),
    )

    class Meta:
        model = DeliverySettings
        fields = [
            "daily_cap",
            "weekly_cap",
            "quiet_hours_start",
            "quiet_hours_end",
            "soft_bounce_limit",
            "smart_sending_hours",
            "track_opens",
            "track_clicks",
        ]
        widgets = {
            "daily_cap": forms.NumberInput(attrs={"min": 1}),
            "weekly_cap": forms.NumberInput(attrs={"min": 1}),
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "smart_sending_hours": forms.NumberInput(attrs={"min": 0, "max": MAX_SMART_SENDING_HOURS}),
        }
        help_texts = {
            "daily_cap": gettext_lazy("Empty: no cap. Transactional mail is never capped."),
            "quiet_hours_start": gettext_lazy(
                "In each contact's time zone; marketing mail due inside the window waits until it ends."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left out of a post (a client that predates it): the saved window stays.
        self.fields["smart_sending_hours"].required = False
        if not self.is_bound:
            self.initial["utm_text"] = self.instance.utm_parameters or {}

    def data_for_service(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in self.Meta.fields}
        if data["smart_sending_hours"] is None:
            del data["smart_sending_hours"]
        data["utm_parameters"] = self.cleaned_data.get("utm_text") or {}
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        add_service_errors(self, error, lambda key: "utm_text" if key == "utm_parameters" else key)
