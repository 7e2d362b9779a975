"""How report figures are written on the pages: rates in percent, changes signed."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.4286 -> "42.9 %" (the reader's decimal mark); None -> "—" (no base, no rate)."""
    if value is None:
        return "—"
    return f"{floatformat(value * 100, digits)} %"


@register.filter
def relative_change(value: float | None) -> str:
    """A count's change from the previous period: "+12.5 %", "−3.0 %", or "" without a base."""
    if value is None:
        return ""
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{floatformat(abs(value) * 100, 1)} %"


@register.filter
def point_change(value: float | None) -> str:
    """A rate's change in percentage points: "+1.2 pp"."""
    if value is None:
        return ""
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    # Translators: "percentage points", the unit of a change of a rate (+1.2 pp).
    unit = _("pp")
    return f"{sign}{floatformat(abs(value) * 100, 1)} {unit}"


@register.filter
def get_item(mapping: dict[str, Any] | None, key: str) -> Any:
    """A dict's value by a variable key (a stage's count in a month's row)."""
    return None if mapping is None else mapping.get(key)
