from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, override, pgettext_lazy

from esp import attempts
from esp.api.errors import error_fields
from esp.models import ApiScope, Role, User, Workspace
from esp.net import client_limit_key

security_log = attempts.logger

TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


def add_service_errors(
    form: forms.BaseForm, error: ValidationError, field_of: Callable[[str], str] = lambda key: key
) -> None:
    """Show a service's ValidationError on a form: each key's messages on its field (named by
    `field_of` where form and service name it differently), the rest on the form as a whole."""
    for key, messages in error_fields(error).items():
        name = field_of(key)
        form.add_error(name if name in form.fields else None, messages)


class TimeRangeForm(forms.Form):
    """A From/Until pair for the filter forms of logs (events, messages): optional, read in the
    time zone the view activates, the end after the start. The fields render with
    templates/partials/time_range_fields.html."""

    since = forms.DateTimeField(
        label=pgettext_lazy("time range", "From"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        label=pgettext_lazy("time range", "Until"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", _("Must be after the start."))
        return data


def too_many_attempts(seconds: int) -> forms.ValidationError:
    minutes = attempts.minutes(seconds)
    text = ngettext(
        "Too many attempts. Try again in %(minutes)d minute.",
        "Too many attempts. Try again in %(minutes)d minutes.",
        minutes,
    )
    return forms.ValidationError(text, code="too_many_attempts", params={"minutes": minutes})


class EmailAuthenticationForm(AuthenticationForm):
    """Login with failed attempts limited per account, per IP and per both (esp.attempts).
    While a limit holds, the password is not even checked: a right guess must not be told
    apart from a wrong one."""

    username = forms.EmailField(
        label=_("Email address"), widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean(self) -> dict[str, Any]:
        email = str(self.cleaned_data.get("username") or "").strip().lower()
        if not email:
            return super().clean()
        ip = client_limit_key(self.request.META) if self.request is not None else None
        checks = [
            (attempts.LOGIN_ACCOUNT_IP, f"{email}|{ip or '-'}"),
            (attempts.LOGIN_ACCOUNT, email),
            (attempts.LOGIN_IP, ip),
        ]
        # Counted before the password is checked, so parallel guesses cannot all slip in
        # under the limit; a right password takes its count back.
        wait = attempts.hit(checks)
        if wait is not None:
            security_log.warning("login refused (too many failed attempts): account=%s ip=%s", email, ip)
            raise too_many_attempts(wait)
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            security_log.info("failed login: account=%s ip=%s", email, ip)
            raise
        attempts.clear(checks[:1])
        attempts.forgive(checks[1:])
        return cleaned


class LimitedPasswordResetForm(PasswordResetForm):
    """Reset mail limited per address and per IP. Over a limit the page answers as always
    (whether the address has an account stays unsaid) and no mail leaves."""

    def save(self, *args: Any, **kwargs: Any) -> None:
        request: HttpRequest | None = kwargs.get("request")  # PasswordResetView passes it by name
        email = str(self.cleaned_data.get("email") or "").strip().lower()
        ip = client_limit_key(request.META) if request is not None else None
        if attempts.hit([(attempts.RESET_ADDRESS, email), (attempts.RESET_IP, ip)]) is not None:
            security_log.warning("password reset not sent (too many requests): address=%s ip=%s", email, ip)
            return
        security_log.info("password reset requested: address=%s ip=%s", email, ip)
        super().save(*args, **kwargs)


class AccountPasswordResetForm(LimitedPasswordResetForm):
    """Django's reset form, writing the mail in the account's language (esp.mail's rule for
    account mail) rather than in whatever language the reset page happened to show."""

    def send_mail(  # type: ignore[override]
        self, subject_template_name: str, email_template_name: str, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        from esp.mail import account_mail_language

        user = context.get("user")
        language = account_mail_language(user=user) if isinstance(user, User) and user.language else None
        if language is None:
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)
            return
        with override(language):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


class SignUpForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    workspace_name = forms.CharField(label=_("Shop or company name"), max_length=120)

    def __init__(self, *args: Any, fixed_email: str | None = None, ask_workspace: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if fixed_email:
            self.fields["email"].initial = fixed_email
            self.fields["email"].disabled = True
        if not ask_workspace:
            del self.fields["workspace_name"]

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError(_("An account with this address exists already. Log in instead."))
        return email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            try:
                password_validation.validate_password(password, User(email=cleaned.get("email", "")))
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class WorkspaceCreateForm(forms.Form):
    name = forms.CharField(label=_("Shop or company name"), max_length=120)


class WorkspaceForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES)

    class Meta:
        model = Workspace
        fields = [
            "name", "time_zone", "default_from_name", "default_from_email", "postal_address", "language", "currency",
        ]  # fmt: skip
        widgets = {"postal_address": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Added later than the other fields: a post without it keeps the workspace's language.
        self.fields["language"].required = False
        self.fields["currency"].required = False

    def clean_language(self) -> str:
        return str(self.cleaned_data.get("language") or self.instance.language)

    def clean_currency(self) -> str:
        return str(self.cleaned_data.get("currency") or self.instance.currency)


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.VIEWER)


class ApiKeyForm(forms.Form):
    form_token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("Where the key is used, e.g. “Shop backend”."))
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Give each key only what its user needs."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["form_token"].initial = uuid.uuid4().hex


class AccountForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "language"]
