"""Checks shared by step kinds: durations, template and list ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _

from audiences.segments.values import RuleErrors

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
MAX_SECONDS = 366 * 86400


def clean_duration(step: dict[str, Any], path: str, errors: RuleErrors, *, prefix: str = "") -> dict[str, Any]:
    """{"amount": 2, "unit": "days"} (under `prefix`, e.g. "timeout_" for timeout_amount)."""
    amount, unit = step.get(prefix + "amount"), step.get(prefix + "unit", "days")
    if unit not in UNITS:
        errors.add(f"{path}.{prefix}unit", _("Expected one of: %(allowed)s.") % {"allowed": ", ".join(UNITS)})
        return {}
    if amount is None or amount == "":
        errors.add(f"{path}.{prefix}amount", _("Say how long (a whole number of %(unit)s).") % {"unit": unit})
        return {}
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0 or amount * UNITS[unit] > MAX_SECONDS:
        errors.add(f"{path}.{prefix}amount", _("Expected a whole number of %(unit)s, at most a year.") % {"unit": unit})
        return {}
    return {prefix + "amount": amount, prefix + "unit": unit}


def duration(step: dict[str, Any], *, prefix: str = "") -> dt.timedelta:
    return dt.timedelta(seconds=step[prefix + "amount"] * UNITS[step[prefix + "unit"]])


def clean_id(value: Any, path: str, errors: RuleErrors, known: set[int], missing: str) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, _("Expected an id (a whole number)."))
        return None
    if value not in known:
        errors.add(path, missing)
        return None
    return value
