"""What a goal may aim at: the message figures of analytics.kpis (from DailyRollup) and the
journey's (orders, revenue, first orders, new contacts, from the journey rollups). Each gives a
`Counted` for a period; only the journey's order measures can be limited to a segment (the
message rollups have no contact dimension)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Min, Sum
from django.utils.translation import gettext_lazy as _

from analytics import selectors
from analytics.goals.pace import Counted
from analytics.journey_models import AudienceDay, CohortCell, CustomerMonth
from analytics.kpis import COUNTERS, RATES, Totals
from audiences.models import Segment, SegmentMembership
from esp.models import Workspace


@dataclass(frozen=True)
class Measure:
    name: str
    label: Any
    kind: str  # "count", "money" or "rate"
    higher_is_better: bool
    segmentable: bool
    count: Callable[[Workspace, dt.date, dt.date, Segment | None], Counted]


def _messages_counter(name: str) -> Callable[[Workspace, dt.date, dt.date, Segment | None], Counted]:
    def count(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Counted:
        return Counted(float(getattr(selectors.totals(workspace=workspace, start=start, end=end), name)))

    return count


# Each rate's numerator and base, read from the same Totals the Overview shows.
_RATE_PARTS: dict[str, Callable[[Totals], tuple[int, int]]] = {
    "open_rate": lambda t: (t.opened, t.base),
    "click_rate": lambda t: (t.clicked, t.base),
    "click_to_open": lambda t: (t.clicked, t.opened),
    "unsubscribe_rate": lambda t: (t.unsubscribed, t.base),
    "complaint_rate": lambda t: (t.complained, t.base),
    "bounce_rate": lambda t: (t.bounced, t.sent),
    "delivery_rate": lambda t: (t.delivered, t.sent),
}


def _messages_rate(name: str) -> Callable[[Workspace, dt.date, dt.date, Segment | None], Counted]:
    def count(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Counted:
        value, base = _RATE_PARTS[name](selectors.totals(workspace=workspace, start=start, end=end))
        return Counted(float(value), float(base))

    return count


def _months(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Any:
    rows = CustomerMonth.objects.filter(workspace=workspace, month__gte=start.replace(day=1), month__lte=end)
    if segment is not None:
        members = SegmentMembership.objects.filter(workspace=workspace, segment=segment, exited_at__isnull=True)
        rows = rows.filter(contact_id__in=members.values("contact_id"))
    return rows


def _orders(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Counted:
    return Counted(float(_months(workspace, start, end, segment).aggregate(n=Sum("orders"))["n"] or 0))


def _revenue(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Counted:
    return Counted(float(_months(workspace, start, end, segment).aggregate(n=Sum("revenue"))["n"] or 0))


def _customers(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Counted:
    rows = _months(workspace, start, end, segment)
    return Counted(float(rows.aggregate(n=Count("contact_id", distinct=True))["n"] or 0))


def _first_orders(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Counted:
    if segment is None:
        cells = CohortCell.objects.filter(workspace=workspace, offset=0, cohort__gte=start.replace(day=1))
        return Counted(float(cells.filter(cohort__lte=end).aggregate(n=Sum("customers"))["n"] or 0))
    members = SegmentMembership.objects.filter(workspace=workspace, segment=segment, exited_at__isnull=True)
    firsts = (
        CustomerMonth.objects.filter(workspace=workspace, contact_id__in=members.values("contact_id"))
        .values("contact_id")
        .annotate(first=Min("month"))
        .filter(first__gte=start.replace(day=1), first__lte=end)
    )
    return Counted(float(firsts.count()))


def _new_contacts(workspace: Workspace, start: dt.date, end: dt.date, segment: Segment | None) -> Counted:
    rows = AudienceDay.objects.filter(workspace=workspace, list_id=0, day__gte=start, day__lte=end)
    return Counted(float(rows.aggregate(n=Sum("new"))["n"] or 0))


_COUNTER_LABELS = {c.name: c.label for c in COUNTERS}
_RATE_LABELS = {r.name: r.label for r in RATES}
_LOWER_IS_BETTER = {"unsubscribed", "complained", "bounced", "unsubscribe_rate", "complaint_rate", "bounce_rate"}

MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("orders", _("Orders"), "count", True, True, _orders),
        Measure("revenue", _("Revenue"), "money", True, True, _revenue),
        Measure("first_orders", _("First orders (new customers)"), "count", True, True, _first_orders),
        Measure("customers", _("Customers who ordered"), "count", True, True, _customers),
        Measure("new_contacts", _("New contacts"), "count", True, False, _new_contacts),
        *(
            Measure(n, _COUNTER_LABELS[n], "count", n not in _LOWER_IS_BETTER, False, _messages_counter(n))
            for n in ("sent", "delivered", "opened", "clicked", "unsubscribed", "complained")
        ),
        *(
            Measure(n, _RATE_LABELS[n], "rate", n not in _LOWER_IS_BETTER, False, _messages_rate(n))
            for n in _RATE_PARTS
        ),
    )
}
