"""What the series pages share: finding a series or enrollment of the workspace (another's is a 404),
the draft, the names steps refer to, the workspace's time zone."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from automations import describe, selectors
from automations.models import Enrollment, Series, SeriesKind, SeriesVersion
from automations.periods import PERIODS
from esp.api.errors import error_fields
from esp.models import Workspace

# The series page's counts refresh this often while the series runs.
COUNTS_REFRESH_SECONDS = 5


def series_or_404(workspace: Workspace, series_id: int) -> Series:
    try:
        return selectors.series_get(workspace=workspace, series_id=series_id)
    except Series.DoesNotExist:
        raise Http404 from None


def enrollment_or_404(workspace: Workspace, enrollment_id: int) -> Enrollment:
    try:
        return selectors.enrollment_get(workspace=workspace, enrollment_id=enrollment_id)
    except Enrollment.DoesNotExist:
        raise Http404 from None


def draft_of(series: Series) -> SeriesVersion | None:
    """The unpublished latest version, if there is one."""
    latest = selectors.series_latest_version(series=series)
    return latest if latest is not None and latest.published_at is None else None


def names_for_versions(workspace: Workspace, series: Series, *versions: SeriesVersion | None) -> describe.Names:
    templates: set[int] = set()
    lists: set[int] = set()
    segments: set[int] = set()
    for version in versions:
        t, li, s = describe.referenced_ids(series, version.steps if version else None)
        templates |= t
        lists |= li
        segments |= s
    return describe.Names(
        **selectors.names_for(workspace=workspace, template_ids=templates, list_ids=lists, segment_ids=segments)
    )


def error_text(error: ValidationError) -> str:
    return " ".join(" ".join(messages) for messages in error_fields(error).values())


def kind_label(kind: str) -> str:
    return str(SeriesKind(kind).label) if kind in SeriesKind.values else kind


def calls_webhooks(series: Series, draft: SeriesVersion | None) -> bool:
    versions = [v for v in (series.live_version, draft) if v is not None]
    return any(step.get("type") == "webhook" for v in versions for step in v.steps.get("steps", []))


def bad_request(request: HttpRequest, message: str) -> HttpResponse:
    """A 400 page that says what was wrong with the address (a hand-edited query string)."""
    return render(request, "400.html", {"message": message}, status=400)


def bad_period(request: HttpRequest) -> HttpResponse:
    return bad_request(
        request,
        _("Unknown period %(period)r: use one of %(allowed)s.")
        % {"period": request.GET.get("period", ""), "allowed": ", ".join(PERIODS)},
    )
