"""Forms of the content pages. They only shape input; the services validate the content."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.content.errors import TemplateProblem
from campaigns.models import EmailTemplate, MessageClass, Provider, SenderIdentity

# Which form field shows the problems of which part of a template or layout.
PART_FIELDS = {
    "mjml": "mjml",
    "subject": "subject",
    "preheader": "preheader",
    "text_body": "text_body",
    "header": "header_mjml",
    "footer": "footer_mjml",
}
PART_LABELS = {
    "mjml": _("MJML"),
    "subject": _("Subject"),
    "preheader": _("Preheader"),
    "text_body": _("Plain-text part"),
    "header": _("Header"),
    "footer": _("Footer"),
}


class TemplateForm(forms.ModelForm[EmailTemplate]):
    class Meta:
        model = EmailTemplate
        fields = ["name", "description", "message_class", "subject", "preheader", "mjml", "text_body", "use_layout"]
        widgets = {
            "mjml": forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "wrap": "off", "class": "code-input"}),
            "text_body": forms.Textarea(attrs={"rows": 6}),
            "message_class": forms.RadioSelect,
        }
        help_texts = {
            "subject": _("Personalise with tags, e.g. {{ contact.first_name|default:'there' }}."),
            "text_body": _("Leave empty to generate it from the HTML of each email (links kept as “text (url)”)."),
        }

    # The workspace's own senders and providers only (set in __init__); posted as ids.
    sender = forms.ModelChoiceField(
        queryset=SenderIdentity.objects.none(),
        required=False,
        label=_("Sender"),
        empty_label=_("The workspace's default sender"),
    )
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(),
        required=False,
        label=_("Sent through"),
        empty_label=_("The workspace's default provider"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        workspace_id = self.instance.workspace_id
        sender = self.fields["sender"]
        provider = self.fields["provider"]
        sender.queryset = SenderIdentity.objects.filter(workspace_id=workspace_id)  # type: ignore[attr-defined]
        provider.queryset = Provider.objects.filter(workspace_id=workspace_id)  # type: ignore[attr-defined]
        sender.initial, provider.initial = self.instance.sender_id, self.instance.provider_id
        self.fields["message_class"].choices = MessageClass.choices  # type: ignore[attr-defined]
        # Uniqueness of the name is the service's to judge (case-insensitive, per workspace).
        self.fields["mjml"].strip = False  # type: ignore[attr-defined]
        self.fields["text_body"].strip = False  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The services take ids.
        for name in ("sender", "provider"):
            if name in cleaned:
                chosen = cleaned.pop(name)
                cleaned[f"{name}_id"] = chosen.pk if chosen is not None else None
        return cleaned

    def validate_unique(self) -> None:
        pass

    def add_problems(self, problems: list[TemplateProblem]) -> None:
        for problem in problems:
            field = PART_FIELDS.get(problem.part, "mjml")
            if field in self.fields:
                self.add_error(field, str(problem))


class NewTemplateForm(forms.Form):
    starter = forms.CharField(max_length=64)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)


class LayoutForm(forms.Form):
    header_mjml = forms.CharField(
        label=_("Header"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "wrap": "off", "class": "code-input"}),
        help_text=_("MJML sections shown above every template that uses the layout."),
    )
    footer_mjml = forms.CharField(
        label=_("Footer"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "wrap": "off", "class": "code-input"}),
        help_text=_(
            "MJML sections shown below them. It must carry {{ unsubscribe_url }} and "
            "{{ workspace.postal_address }}; {{ preferences_url }} and {{ view_in_browser_url }} are there too."
        ),
    )

    def add_problems(self, problems: list[TemplateProblem]) -> None:
        for problem in problems:
            self.add_error(PART_FIELDS.get(problem.part, "footer_mjml"), str(problem))
