"""The scoring job: its requests (a click, the nightly fan-out), its state shown on the RFM
page, and the run itself (RFM scores, lifecycle stages, the pages' figures, then segments)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audiences.facts.figures import insight_figures_refresh
from audiences.facts.lifecycle import lifecycle_refresh
from audiences.facts.rfm import rfm_score
from audiences.models import CustomerFacts, InsightFigures
from esp.models import Workspace
from esp.queue import enqueue_after_commit

# --- the scoring job: state shown on the RFM page ---------------------------------------------
#
# The job has no row of its own: its result is on the facts rows and in InsightFigures. Whether
# one is queued or running, and when the last finished, is kept in the cache, with a TTL so a
# worker that died does not leave the page saying "running" for ever. cache.add makes the queued
# flag a guard too: a second click while one is queued or running enqueues nothing.

SCORING_STALE_SECONDS = 3600


def _scoring_key(workspace_id: int) -> str:
    return f"audiences:rfm-scoring:{workspace_id}"


def _scored_key(workspace_id: int) -> str:
    return f"audiences:rfm-scored:{workspace_id}"


@dataclass(frozen=True)
class ScoringStatus:
    state: str  # "", "queued" or "running"
    since: datetime | None
    last_finished_at: datetime | None
    last_customers: int | None


def scoring_mark_queued(*, workspace_id: int) -> bool:
    """True if no scoring was queued or running for the workspace (and now one is)."""
    return bool(cache.add(_scoring_key(workspace_id), ("queued", timezone.now()), SCORING_STALE_SECONDS))


def scoring_status(*, workspace_id: int) -> ScoringStatus:
    state, since = cache.get(_scoring_key(workspace_id)) or ("", None)
    last = cache.get(_scored_key(workspace_id))
    if last is None:
        # Cache lost (or never set): the stored figures still say when scoring last ran.
        figures = InsightFigures.objects.filter(workspace_id=workspace_id).values_list("scored_at", "scored").first()
        last = figures if figures and figures[0] else (None, None)
    return ScoringStatus(state=state, since=since, last_finished_at=last[0], last_customers=last[1])


def scoring_request(*, workspace_id: int) -> bool:
    """Queue a scoring of the workspace unless one is queued or running; True if queued."""
    from audiences.tasks import score_rfm

    if not scoring_mark_queued(workspace_id=workspace_id):
        return False
    enqueue_after_commit(score_rfm, workspace_id)
    return True


def scoring_request_all() -> int:
    """The nightly fan-out: one job per workspace with customers, so a big workspace neither
    delays nor fails the others. Returns how many were queued."""
    workspace_ids = (
        Workspace.objects.filter(Exists(CustomerFacts.objects.filter(workspace_id=OuterRef("pk"))))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return sum(scoring_request(workspace_id=workspace_id) for workspace_id in workspace_ids.iterator())


@dataclass(frozen=True)
class ScoringResult:
    scored: int
    stages_changed: int


def customer_scores_refresh(*, workspace_id: int) -> ScoringResult:
    """The job behind the RFM page's button and the nightly run: RFM scores, then lifecycle
    stages (which move with time alone)."""
    cache.set(_scoring_key(workspace_id), ("running", timezone.now()), SCORING_STALE_SECONDS)
    try:
        scored = rfm_score(workspace_id=workspace_id)
        changed = lifecycle_refresh(workspace_id=workspace_id)
        finished = timezone.now()
        insight_figures_refresh(workspace_id=workspace_id, scored_at=finished)
    finally:
        cache.delete(_scoring_key(workspace_id))
    cache.set(_scored_key(workspace_id), (finished, scored), None)
    _segments_follow(workspace_id)
    return ScoringResult(scored=scored, stages_changed=changed)


def lifecycle_stages_apply(*, workspace_id: int) -> int:
    """After the thresholds changed: stages again, and the segments that use them."""
    changed = lifecycle_refresh(workspace_id=workspace_id)
    insight_figures_refresh(workspace_id=workspace_id)
    if changed:
        _segments_follow(workspace_id)
    return changed


def _segments_follow(workspace_id: int) -> None:
    """Scores and stages changed workspace-wide: materialised segment memberships (which may
    use them) are refreshed by the segments' own job."""
    from audiences.segments.services import segments_workspace_changed

    segments_workspace_changed(workspace_id=workspace_id)
