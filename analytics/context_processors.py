"""The deliverability warning every page of a workspace shows (templates/base.html): read
only when the template asks (a callable), from the cache (analytics.deliverability)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def deliverability(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}

    def warning() -> Any:
        from analytics.deliverability import warning_for

        return warning_for(membership.workspace)

    return {"deliverability_warning": warning}
