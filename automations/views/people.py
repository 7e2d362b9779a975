"""The people behind a count on the series page: /series/<id>/steps/<key>/people/?what=…&period=…
Read-only, so viewers see it too; another workspace's series is a 404, an unknown step a 404, a
`what`, `period` or `after` the page cannot read a 400 that says which."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from audiences.segments.registry import RuleContext
from automations import describe
from automations.periods import PERIODS, UnknownPeriod, period_of, period_since
from automations.selectors import conversion_amounts
from automations.step_people import (
    KINDS,
    VALUED_KINDS,
    BadCursor,
    BadWhat,
    Cursor,
    Person,
    What,
    parse_what,
    step_key_known,
    step_people,
)
from automations.views.common import (
    bad_period,
    bad_request,
    draft_of,
    names_for_versions,
    series_or_404,
)
from esp.web import WorkspaceView


def what_title(what: What) -> str:
    """What the list holds, in words: the count's own label on the card."""
    titles = {
        "reached": _("Reached this step"),
        "waiting": _("On this step now"),
        "sent": _("Sent this step's email"),
        "delivered": _("Delivered"),
        "opened": _("Opened this step's email"),
        "clicked": _("Clicked in this step's email"),
        "converted": _("Converted on this step"),
        "held_out": _("Held out (holdout group)"),
        "exited": _("Left the series here"),
        "failed": _("Failed here"),
    }
    if what.kind == "skipped":
        return _("Skipped: %(why)s") % {"why": describe.skip_reason_text(what.value)}
    if what.kind == "branch":
        return _("Took the branch “%(branch)s”") % {"branch": describe.branch_text(what.value)}
    return titles[what.kind]


def _detail(what: What, person: Person) -> str:
    """The line beside a person: what the trace says, or when they opened or clicked."""
    trace = person.trace
    if trace is None:
        enrollment = person.enrollment
        if enrollment.wait_event:
            return _("waiting for %(event)s") % {"event": enrollment.wait_event}
        return ""
    if what.kind in ("opened", "clicked") and trace.message is not None:
        at = trace.message.opened_at if what.kind == "opened" else trace.message.clicked_at
        if at is not None:
            label = _("opened %(at)s") if what.kind == "opened" else _("clicked %(at)s")
            return label % {"at": formats.date_format(timezone.localtime(at), "SHORT_DATETIME_FORMAT")}
    return describe.trace_text(trace)


class SeriesStepPeopleView(WorkspaceView):
    def get(self, request: HttpRequest, series_id: int, step_key: str) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        if not step_key_known(workspace=self.workspace, series=series, step_key=step_key):
            raise Http404
        try:
            what = parse_what(request.GET.get("what"))
        except BadWhat:
            allowed = [*sorted(KINDS), *(f"{kind}:…" for kind in sorted(VALUED_KINDS))]
            return bad_request(
                request,
                _("Unknown list %(what)r: use what= one of %(allowed)s.")
                % {"what": request.GET.get("what", ""), "allowed": ", ".join(allowed)},
            )
        try:
            period = period_of(request.GET.get("period"))
        except UnknownPeriod:
            return bad_period(request)
        after = None
        if request.GET.get("after"):
            try:
                after = Cursor.decode(request.GET["after"])
            except BadCursor:
                return bad_request(
                    request, _("This page address is broken: start the list again from the series page.")
                )
        tz = self.workspace.zone
        page = step_people(
            workspace=self.workspace,
            series=series,
            step_key=step_key,
            what=what,
            since=period_since(period, tz),
            after=after,
        )
        amounts = (
            conversion_amounts(
                workspace=self.workspace,
                series=series,
                trace_ids=[p.trace.pk for p in page.people if p.trace is not None],
            )
            if what.kind == "converted"
            else {}
        )
        shown = series.live_version or draft_of(series)
        step = next(
            (
                view
                for view in describe.step_views(
                    shown.steps if shown else None,
                    names_for_versions(self.workspace, series, shown),
                    RuleContext(self.workspace),
                )
                if view.key == step_key
            ),
            None,
        )
        with timezone.override(tz):
            context: dict[str, Any] = {
                "series": series,
                "step_key": step_key,
                "step": step,
                "what": str(what),
                "title": what_title(what),
                # "On this step now" is always now; every other list is of the period.
                "period_label": None if what.kind == "waiting" else PERIODS[period],
                "period": period,
                "rows": [
                    {
                        "person": p,
                        "detail": _detail(what, p),
                        "amount": amounts.get(p.trace.pk) if p.trace is not None else None,
                    }
                    for p in page.people
                ],
                "next_after": page.next_cursor.encode() if page.next_cursor else "",
                "paged": after is not None,
            }
            return render(request, "automations/step_people.html", context)
