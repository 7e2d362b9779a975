"""Wait until a local time of day, or until a date of the contact.

    {"type": "wait_until", "time": "10:00", "weekdays": [2, 4], "next": …}
        the next Tuesday or Thursday at 10:00 (ISO weekdays, 1 = Monday; none: the next 10:00)
    {"type": "wait_until", "attribute": "birth_date" | <custom date field>, "offset_days": -3,
     "time": "09:00", "anniversary": true, "next": …}
        three days before the date (its next anniversary, with `anniversary`) at 09:00

Times are the contact's wall-clock time: in the contact's time zone, else the workspace's
(see automations/local_time.py for DST). The moment is counted from when the contact reached
the step, so waking up recomputes the same moment. A contact without the date, or whose
(non-anniversary) date has passed, goes on at once, and the trace says why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.models import Contact, CustomField, FieldType
from audiences.segments.values import RuleErrors
from automations.engine.walk import RunContext, Walker
from automations.local_time import (
    at_local,
    date_value,
    next_anniversary_moment,
    next_weekday_time,
    parse_time,
    zone_of,
)
from automations.models import TraceOutcome
from automations.steps.registry import CleanContext, Go, Result, StepKind, Wait, next_exit, register_step_kind

MAX_OFFSET_DAYS = 365
WEEKDAY_NAMES = ("", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def date_fields(ctx: CleanContext) -> set[str]:
    """The contact dates a step or trigger may name: the birth date and custom date fields."""
    return {"birth_date"} | ctx.cached(
        "date_fields",
        lambda: set(
            CustomField.objects.in_workspace(ctx.workspace)
            .filter(type__in=(FieldType.DATE, FieldType.DATETIME))
            .values_list("key", flat=True)
        ),
    )


def clean_time(raw: Any, path: str, errors: RuleErrors) -> str:
    if parse_time(raw) is None:
        errors.add(path, _("Expected a time of day as HH:MM (24 hours), e.g. 09:30."))
        return ""
    return str(raw)


def clean_offset(raw: Any, path: str, errors: RuleErrors) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) > MAX_OFFSET_DAYS:
        errors.add(path, _("Expected a whole number of days from -365 to 365."))
        return 0
    return raw


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    cleaned: dict[str, Any] = {"time": clean_time(step.get("time"), f"{path}.time", errors)}
    attribute = step.get("attribute")
    if attribute is None:
        for field in ("offset_days", "anniversary"):
            if field in step:
                errors.add(f"{path}.{field}", _("Only with a date attribute."))
        weekdays = step.get("weekdays") or []
        if not isinstance(weekdays, list) or any(
            isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7 for day in weekdays
        ):
            errors.add(f"{path}.weekdays", _("Expected weekdays as numbers from 1 (Monday) to 7 (Sunday)."))
        elif weekdays:
            cleaned["weekdays"] = sorted(set(weekdays))
        return cleaned
    if "weekdays" in step:
        errors.add(f"{path}.weekdays", _("Weekdays go with a time of day, not with a date attribute."))
    if attribute not in date_fields(ctx):
        errors.add(f"{path}.attribute", _("Expected birth_date or the key of a custom date field."))
        return cleaned
    cleaned["attribute"] = attribute
    cleaned["offset_days"] = clean_offset(step.get("offset_days"), f"{path}.offset_days", errors)
    anniversary = step.get("anniversary", attribute == "birth_date")
    if not isinstance(anniversary, bool):
        errors.add(f"{path}.anniversary", _("Expected true or false."))
    else:
        cleaned["anniversary"] = anniversary
    return cleaned


def describe(step: dict[str, Any]) -> str:
    time = step.get("time", "")
    if not step.get("attribute"):
        days = step.get("weekdays") or []
        if days:
            names = ", ".join(WEEKDAY_NAMES[d] for d in days)
            return _("wait until %(time)s on %(days)s (contact's time)") % {"time": time, "days": names}
        return _("wait until %(time)s (contact's time)") % {"time": time}
    offset = int(step.get("offset_days") or 0)
    date = step["attribute"] + (_(" anniversary") if step.get("anniversary") else "")
    if offset < 0:
        return _("wait until %(days)d days before %(date)s at %(time)s") % {"days": -offset, "date": date, "time": time}
    if offset > 0:
        return _("wait until %(days)d days after %(date)s at %(time)s") % {"days": offset, "date": date, "time": time}
    return _("wait until %(date)s at %(time)s") % {"date": date, "time": time}


def moment(
    step: dict[str, Any], after: dt.datetime, contact_zone: str, workspace_zone: str, dates: dict[str, Any]
) -> tuple[dt.datetime | None, str]:
    """When the wait ends for a contact who reached the step at `after`, and why not (None)."""
    zone = zone_of(contact_zone, workspace_zone)
    time = parse_time(step["time"]) or dt.time(9)
    if not step.get("attribute"):
        return next_weekday_time(after, time, zone, step.get("weekdays") or ()), ""
    date = date_value(dates.get(step["attribute"]), zone)
    if date is None:
        return None, f"no {step['attribute']}: went on"
    offset = int(step.get("offset_days") or 0)
    if step.get("anniversary"):
        return next_anniversary_moment(after, date, offset, time, zone)[0], ""
    when = at_local(date + dt.timedelta(days=offset), time, zone)
    if when < after:
        return None, f"{step['attribute']} {date.isoformat()} has passed: went on"
    return when, ""


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    rows = Contact.objects.filter(workspace_id=ctx.workspace.pk, pk__in={w.contact_id for w in walkers}).values_list(
        "pk", "time_zone", "birth_date", "attributes"
    )
    contacts = {pk: (zone or "", {**(attributes or {}), "birth_date": birth}) for pk, zone, birth, attributes in rows}
    results: dict[int, Result] = {}
    for walker in walkers:
        zone, dates = contacts.get(walker.contact_id, ("", {}))
        started = walker.step_started_at or ctx.now
        until, why = moment(step, started, zone, ctx.workspace.time_zone, dates)
        if until is None:
            results[walker.id] = Go(step.get("next"), TraceOutcome.SKIPPED, why)
        elif until <= ctx.now:
            results[walker.id] = Go(step.get("next"), TraceOutcome.WAITED)
        elif walker.waiting:
            # Woken before its moment (a version change, a contact's new time zone): wait on.
            results[walker.id] = Wait(until, trace=False)
        else:
            local = until.astimezone(zone_of(zone, ctx.workspace.time_zone))
            results[walker.id] = Wait(until, f"until {local:%Y-%m-%d %H:%M} {local.tzname()}")
    return results


WAIT_UNTIL = register_step_kind(
    StepKind(
        name="wait_until",
        label=gettext_lazy("Wait until"),
        fields=frozenset({"time", "weekdays", "attribute", "offset_days", "anniversary"}),
        clean=_clean,
        exits=next_exit,
        run=_run,
        waits=True,
        describe=describe,
    )
)
