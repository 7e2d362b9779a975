"""The cards' rows: each step in words with its counts over a period, every count a link to
the people behind it. The series page and the builder draw the same cards from these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.urls import reverse

from audiences.segments.registry import RuleContext
from automations import describe, selectors
from automations.models import Series, SeriesVersion
from automations.periods import period_since
from esp.models import Workspace


@dataclass(frozen=True)
class CountLink:
    """A count of a card that has a name (a skip reason, a branch): its words, its number and
    the `what` of the list of its people."""

    text: str
    n: int
    what: str


def step_rows(
    workspace: Workspace,
    series: Series,
    version: SeriesVersion | None,
    names: describe.Names,
    period: str,
) -> list[Any]:
    counts = selectors.series_step_counts(
        workspace=workspace, series=series, since=period_since(period, workspace.zone)
    )
    ctx = RuleContext(workspace)
    rows = []
    for step in describe.step_views(version.steps if version else None, names, ctx):
        count = counts.get(step.key, selectors.StepCounts())
        # Each count links to its people: this prefix and the count's `what`.
        people = f"{reverse('series-step-people', args=[series.pk, step.key])}?period={period}&what="
        rows.append(
            {
                "step": step,
                "counts": count,
                "people": people,
                "skipped": sorted(
                    (
                        CountLink(describe.skip_reason_text(reason), n, quote(f"skipped:{reason}"))
                        for reason, n in count.skipped.items()
                    ),
                    key=lambda link: -link.n,
                ),
                "branches": sorted(
                    (CountLink(describe.branch_text(b), n, quote(f"branch:{b}")) for b, n in count.branches.items()),
                    key=lambda link: link.text,
                ),
                "open_rate": round(100 * count.opened / count.sent) if count.sent else None,
                "click_rate": round(100 * count.clicked / count.sent) if count.sent else None,
            }
        )
    return rows
