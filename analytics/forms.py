"""The period picker of the report pages (GET, so the URL names the report)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from analytics.periods import DEFAULT_PERIOD, Period, period_make
from esp.forms import add_service_errors


class PeriodForm(forms.Form):
    period = forms.ChoiceField(
        label=_("Period"),
        required=False,
        choices=[
            ("7d", _("Last 7 days")),
            ("30d", _("Last 30 days")),
            ("90d", _("Last 90 days")),
            ("month", _("A month")),
            ("custom", _("From … to")),
        ],
    )
    month = forms.DateField(
        label=_("Month"), required=False, input_formats=["%Y-%m"], widget=forms.DateInput(attrs={"type": "month"})
    )
    # "from" and "to" are the URL's words (as in the API); Python keeps "from" for itself.
    vars()["from"] = forms.DateField(
        label=pgettext_lazy("first day of a period", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    grain = forms.ChoiceField(
        label=_("Charts by"),
        required=False,
        choices=[("", _("Automatic")), ("day", _("Day")), ("week", _("Week")), ("month", _("Month"))],
    )

    def period_for(self, *, today: dt.date) -> Period | None:
        """The period the form names, or None with the form's errors set."""
        if not self.is_valid():
            return None
        data: dict[str, Any] = self.cleaned_data
        kind = data.get("period") or DEFAULT_PERIOD
        if kind != "custom" and (data.get("from") or data.get("to")) and not data.get("period"):
            kind = "custom"  # ?from=…&to=… alone, as the API takes them
        try:
            return period_make(
                today=today,
                kind=kind,
                month=data.get("month"),
                start=data.get("from"),
                end=data.get("to"),
                grain=data.get("grain") or "",
            )
        except ValidationError as error:
            add_service_errors(self, error)
            return None
