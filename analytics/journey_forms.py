"""Forms of the journey, cohort, goal and digest pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from analytics.goals.measures import MEASURES
from analytics.journey import MAX_MONTHS, add_months, months_between
from analytics.journey_models import DigestFrequency, TargetKind
from audiences.models import Segment
from esp.models import Workspace

DEFAULT_MONTHS = 12


class MonthRangeForm(forms.Form):
    """?from=YYYY-MM&to=YYYY-MM (GET: the URL names the report); default the last 12 months."""

    vars()["from"] = forms.DateField(
        label=pgettext_lazy("first month of a period", "From"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )
    to = forms.DateField(
        label=pgettext_lazy("last month of a period", "To"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )

    def months_for(self, *, today: dt.date) -> tuple[dt.date, dt.date] | None:
        """(first month, last month) as first days, or None with the form's errors set."""
        if not self.is_valid():
            return None
        this_month = today.replace(day=1)
        last = (self.cleaned_data.get("to") or this_month).replace(day=1)
        first = (self.cleaned_data.get("from") or add_months(last, -(DEFAULT_MONTHS - 1))).replace(day=1)
        if first > last:
            self.add_error("to", _("The last month is before the first month."))
            return None
        if last > this_month:
            self.add_error("to", _("That month has not come yet."))
            return None
        if months_between(first, last) + 1 > MAX_MONTHS:
            self.add_error("from", _("The report covers at most the last %(n)d months.") % {"n": MAX_MONTHS})
            return None
        if months_between(first, this_month) + 1 > MAX_MONTHS:
            self.add_error("from", _("The report covers at most the last %(n)d months.") % {"n": MAX_MONTHS})
            return None
        return first, last


class GoalForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    kpi = forms.ChoiceField(label=_("Measure"))
    target_kind = forms.ChoiceField(label=_("Target"), choices=TargetKind.choices)
    target_value = forms.DecimalField(
        label=_("Target value"),
        max_digits=16,
        decimal_places=4,
        help_text=_("A count, an amount, or a rate in percent (0.1 for 0.1 %); for a change: +40 or −10 (percent)."),
    )
    start = forms.DateField(
        label=_("First month"), input_formats=["%Y-%m"], widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m")
    )
    end = forms.DateField(
        label=_("Last month"), input_formats=["%Y-%m"], widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m")
    )
    segment = forms.TypedChoiceField(
        label=_("Segment"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_("Optional; only for orders, revenue, first orders and customers."),
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kpi: Any = self.fields["kpi"]
        kpi.choices = [(m.name, m.label) for m in MEASURES.values()]
        segments = Segment.objects.in_workspace(workspace).order_by("name").values_list("pk", "name")
        segment: Any = self.fields["segment"]
        segment.choices = [("", _("All contacts")), *segments]


class DigestForm(forms.Form):
    frequency = forms.ChoiceField(label=_("KPI digest"), choices=DigestFrequency.choices)
