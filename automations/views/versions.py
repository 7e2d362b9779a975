"""A series' versions, newest first: which is the draft, which is live, who published each and
when, how many enrollments are on it, and what it changed from the one before."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from audiences.segments.registry import RuleContext
from automations import selectors
from automations.models import Series, SeriesVersion
from automations.versions import diff_summary, steps_diff
from automations.views.common import names_for_versions, series_or_404
from esp.web import WorkspaceView


def version_state(series: Series, version: SeriesVersion) -> str:
    """ "draft", "live" (the version new entrants get) or "earlier"."""
    if version.published_at is None:
        return "draft"
    return "live" if version.pk == series.live_version_id else "earlier"


class SeriesVersionsView(WorkspaceView):
    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        versions = list(selectors.series_versions(series=series).select_related("published_by"))
        names = names_for_versions(self.workspace, series, *versions)
        ctx = RuleContext(self.workspace)
        enrollments = selectors.version_enrollment_counts(workspace=self.workspace, series=series)
        rows = []
        for index, version in enumerate(versions):
            previous = versions[index + 1] if index + 1 < len(versions) else None
            diff = steps_diff(previous.steps if previous else None, version.steps, names, ctx)
            rows.append(
                {
                    "version": version,
                    "state": version_state(series, version),
                    "previous": previous,
                    "enrollments": enrollments.get(version.pk, 0),
                    "diff": diff,
                    "summary": diff_summary(diff),
                }
            )
        with timezone.override(self.workspace.zone):
            return render(request, "automations/versions.html", {"series": series, "rows": rows})
