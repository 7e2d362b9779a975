"""Purchase facts, RFM scores and lifecycle stages, derived from a contact's order events.

Everything here is set-based SQL over the event store: one statement recomputes the facts of
a whole batch of contacts, one scores a whole workspace. Facts are always *recomputed* from all
of a contact's order events (never incremented), so duplicates, refunds and events that arrive
late or out of order give the same numbers as if everything had arrived in order.

One concern a module:

- purchases: the order semantics, purchase_facts_refresh (a batch) and _rebuild (a workspace);
- lifecycle: the thresholds (set or derived), the stage as SQL, lifecycle_refresh, settings;
- rfm: the segment grid and rfm_score;
- scoring: the scoring job (requests, state shown on the RFM page, the run itself);
- figures: insight_figures_refresh, the stored figures of the RFM and lifecycle pages;
- locks: the workspace advisory lock they share.
"""

from audiences.facts.figures import insight_figures_refresh
from audiences.facts.lifecycle import (
    AT_RISK_CEILING_DAYS,
    AT_RISK_FACTOR,
    AT_RISK_FALLBACK_DAYS,
    AT_RISK_FLOOR_DAYS,
    DEFAULT_LOYAL_MIN_ORDERS,
    LAPSED_FACTOR,
    MIN_REPEAT_CUSTOMERS,
    LifecycleThresholds,
    WorkspaceInterval,
    lifecycle_refresh,
    lifecycle_settings_save,
    lifecycle_thresholds,
    workspace_interval,
)
from audiences.facts.purchases import ORDER_COMPLETED, ORDER_REFUNDED, purchase_facts_rebuild, purchase_facts_refresh
from audiences.facts.rfm import RFM_SEGMENT_GRID, rfm_ntile_baseline, rfm_score, rfm_segment_of
from audiences.facts.scoring import (
    SCORING_STALE_SECONDS,
    ScoringResult,
    ScoringStatus,
    customer_scores_refresh,
    lifecycle_stages_apply,
    scoring_mark_queued,
    scoring_request,
    scoring_request_all,
    scoring_status,
)

__all__ = [
    "AT_RISK_CEILING_DAYS",
    "AT_RISK_FACTOR",
    "AT_RISK_FALLBACK_DAYS",
    "AT_RISK_FLOOR_DAYS",
    "DEFAULT_LOYAL_MIN_ORDERS",
    "LAPSED_FACTOR",
    "MIN_REPEAT_CUSTOMERS",
    "ORDER_COMPLETED",
    "ORDER_REFUNDED",
    "RFM_SEGMENT_GRID",
    "SCORING_STALE_SECONDS",
    "LifecycleThresholds",
    "ScoringResult",
    "ScoringStatus",
    "WorkspaceInterval",
    "customer_scores_refresh",
    "insight_figures_refresh",
    "lifecycle_refresh",
    "lifecycle_settings_save",
    "lifecycle_stages_apply",
    "lifecycle_thresholds",
    "purchase_facts_rebuild",
    "purchase_facts_refresh",
    "rfm_ntile_baseline",
    "rfm_score",
    "rfm_segment_of",
    "scoring_mark_queued",
    "scoring_request",
    "scoring_request_all",
    "scoring_status",
    "workspace_interval",
]
