from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from audiences.models import Contact, CustomField, FieldType, Gender, MailingList, SubscriptionStatus, SuppressionReason
from esp.forms import TIME_ZONE_CHOICES, add_service_errors


class ContactForm(forms.Form):
    """Standard fields plus one input per declared custom field. Validation of values happens
    in the service (the same rules as the API and imports); the form only renders and reads."""

    email = forms.CharField(label=_("Email address"), max_length=254)
    external_id = forms.CharField(label=_("External id"), max_length=255, required=False)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    gender = forms.ChoiceField(label=_("Gender"), choices=[("", "—"), *Gender.choices], required=False)
    birth_date = forms.CharField(label=_("Birth date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    city = forms.CharField(label=_("City"), max_length=120, required=False)
    country = forms.CharField(label=_("Country"), max_length=2, required=False, help_text=_("Two letters, e.g. BG"))
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=[("", "—"), *TIME_ZONE_CHOICES], required=False)
    locale = forms.CharField(label=_("Locale"), max_length=16, required=False, help_text=_("e.g. ru, bg, en"))
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Separated by commas"))

    def __init__(self, *args: Any, custom_fields: list[CustomField], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.custom_fields = custom_fields
        for field in custom_fields:
            name = f"attr__{field.key}"
            if field.type == FieldType.BOOLEAN:
                self.fields[name] = forms.ChoiceField(
                    label=field.label, required=False, choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))]
                )
            elif field.type == FieldType.CHOICE:
                self.fields[name] = forms.ChoiceField(
                    label=field.label, required=False, choices=[("", "—"), *((c, c) for c in field.choices)]
                )
            elif field.type in (FieldType.DATE, FieldType.DATETIME):
                kind = "date" if field.type == FieldType.DATE else "datetime-local"
                self.fields[name] = forms.CharField(
                    label=field.label, required=False, widget=forms.DateInput(attrs={"type": kind})
                )
            else:
                self.fields[name] = forms.CharField(label=field.label, required=False)
            self.fields[name].help_text = f"contact.{field.key}"

    @classmethod
    def initial_for(cls, contact: Contact) -> dict[str, Any]:
        initial = {name: getattr(contact, name) for name in ContactForm.base_fields if name != "tags"}
        initial["tags"] = ", ".join(contact.tags)
        initial.update(
            {
                f"attr__{key}": str(value).lower() if isinstance(value, bool) else value
                for key, value in contact.attributes.items()
            }
        )
        return initial

    def data_for_service(self) -> dict[str, Any]:
        """Raw values as the service expects them: blanks mean 'clear' for standard fields."""
        data: dict[str, Any] = {
            name: self.data.get(name, "") for name in ContactForm.base_fields if name not in ("tags",)
        }
        data["tags"] = [t.strip() for t in self.data.get("tags", "").split(",") if t.strip()]
        data["attributes"] = {
            field.key: self.data.get(f"attr__{field.key}", "") or None for field in self.custom_fields
        }
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        add_service_errors(
            self, error, lambda key: f"attr__{key.split('.', 1)[1]}" if key.startswith("attributes.") else key
        )


class MailingListForm(forms.ModelForm):
    class Meta:
        model = MailingList
        fields = ["name", "description", "is_public", "double_opt_in"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class CustomFieldDeleteForm(forms.Form):
    purge_values = forms.BooleanField(
        label=_("Also delete the values stored on contacts"),
        required=False,
        help_text=_("They cannot be brought back."),
    )


class CustomFieldForm(forms.ModelForm):
    choices = forms.CharField(
        label=_("Choices"), required=False, help_text=_("For the type Choice: the values, separated by commas")
    )

    class Meta:
        model = CustomField
        fields = ["key", "label", "type", "choices"]

    def clean_choices(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data.get("choices", "").split(",") if c.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("type") == FieldType.CHOICE and not cleaned.get("choices"):
            self.add_error("choices", _("A choice field needs its choices."))
        return cleaned


class SuppressionForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))
    reason = forms.ChoiceField(label=_("Reason"), choices=SuppressionReason.choices, initial=SuppressionReason.MANUAL)
    note = forms.CharField(label=_("Note"), max_length=400, required=False)


class ContactFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    list = forms.IntegerField(label=_("List"), required=False)
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("Any")), *SubscriptionStatus.choices], required=False)
    tag = forms.CharField(label=_("Tag"), required=False)


class PublicSubscribeForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    consent = forms.BooleanField(label=_("I agree to receive this newsletter by email."), required=True)
