"""Purchase facts, RFM scores and lifecycle stages, derived from a contact's order events.

Everything here is set-based SQL over the event store: one statement recomputes the facts of
a whole batch of contacts, one scores a whole workspace. Facts are always *recomputed* from all
of a contact's order events (never incremented), so duplicates, refunds and events that arrive
late or out of order give the same numbers as if everything had arrived in order.

Order semantics (Segment e-commerce spec), decided here and relied on by segments and pages:

- An order is a track event "Order Completed". Its key is `properties.order_id`; an event
  without one is an order of its own (keyed by the event). The same order_id sent again (a
  retry with a new messageId) counts once: the earliest `occurred_at` wins, with its amount.
- The amount is `total`, else `revenue`, else the sum of `products[].price × quantity`
  (quantity 1 when absent), else 0. Numbers or numeric strings, 0 ≤ amount < 10^10; anything
  else is ignored as if absent. One currency per workspace is assumed.
- "Order Refunded" refers to an order by `order_id`. With an amount (same rules as above) it is
  a partial refund of that amount; without one, a full refund. Refunds of the same order add
  up, capped at the order's amount. A refund whose order has not arrived yet is kept in the
  event store and applied when the order arrives (the next recompute sees both).
- A fully refunded order (a refund without an amount, or refunds adding up to the whole
  positive amount) is no longer an order: it does not count in orders_count, first/last order,
  intervals, products or categories. A partly refunded one counts, with its amount reduced.
  `refunds_count` is the number of orders with any refund; `refunded` the amount given back.
- revenue = Σ (amount − refunded) over counted orders; AOV = revenue / orders_count.
- median_days_between_orders: the median of the gaps between consecutive counted orders
  (in occurred_at order), in days; predicted_next_order_at = last order + that median. Both
  are null with fewer than two orders.
- products: distinct `product_id` (else `sku`) of counted orders; categories: distinct
  `category`; each value cut to 128 characters.

A contact without order events and without a facts row gets no row: no row means "prospect"
(segments treat it so). A contact whose orders were all refunded keeps a row with zeros.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import CustomerFacts, InsightFigures, LifecycleSettings, LifecycleStage, RfmSegment
from esp.models import Workspace
from esp.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"

# Advisory-lock namespaces (first key of pg_advisory_xact_lock(int, int)).
_LOCK_WORKSPACE = 4_102  # shared by fact refreshes, exclusive for workspace-wide scoring

# --- RFM -------------------------------------------------------------------------------------
#
# Scores are quintiles within the workspace over customers with at least one counted order:
# NTILE(5) over last_order_at (recency), orders_count (frequency) and revenue (monetary), 5 is
# best. NTILE splits equal values across tiles arbitrarily (most shops have a majority of
# one-order customers), so every customer then gets the *lowest* tile reached by its value:
# equal values always score the same, and distinct values keep NTILE's quintile boundaries.
#
# The named segment comes from R and FM = round-half-up((F + M) / 2), by this table (the usual
# R × FM segmentation, made non-overlapping):
#
#            FM=1            FM=2                FM=3                FM=4             FM=5
#   R=5  new customer    potential loyalist  potential loyalist  champions        champions
#   R=4  promising       potential loyalist  potential loyalist  champions        champions
#   R=3  about to sleep  need attention      need attention      loyal            loyal
#   R=2  hibernating     hibernating         at risk             at risk          can't lose them
#   R=1  lost            lost                at risk             can't lose them  can't lose them

_S = RfmSegment
RFM_SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: (_S.NEW_CUSTOMER, _S.POTENTIAL_LOYALIST, _S.POTENTIAL_LOYALIST, _S.CHAMPIONS, _S.CHAMPIONS),
    4: (_S.PROMISING, _S.POTENTIAL_LOYALIST, _S.POTENTIAL_LOYALIST, _S.CHAMPIONS, _S.CHAMPIONS),
    3: (_S.ABOUT_TO_SLEEP, _S.NEED_ATTENTION, _S.NEED_ATTENTION, _S.LOYAL, _S.LOYAL),
    2: (_S.HIBERNATING, _S.HIBERNATING, _S.AT_RISK, _S.AT_RISK, _S.CANT_LOSE_THEM),
    1: (_S.LOST, _S.LOST, _S.AT_RISK, _S.CANT_LOSE_THEM, _S.CANT_LOSE_THEM),
}


def rfm_segment_of(recency: int, frequency: int, monetary: int) -> str:
    """The named segment of one score triple (the table above; the SQL uses the same table)."""
    return str(RFM_SEGMENT_GRID[recency][(frequency + monetary + 1) // 2 - 1])


# --- lifecycle -------------------------------------------------------------------------------
#
# prospect: no counted order · first_time: 1 order · repeat: 2+ · loyal: loyal_min_orders+ ;
# then, whatever the count, at_risk once at_risk_after_days have passed since the last order and
# lapsed once lapsed_after_days have. Empty day thresholds are derived from the workspace's own
# median purchase interval M (the median over its customers of their median days between
# orders, needing MIN_REPEAT_CUSTOMERS repeat customers to be meaningful):
#   at risk after 2×M days, at least 30 and at most 365 (90 without a usable M),
#   lapsed after twice the at-risk threshold (so 4×M by default).
# A derived at-risk threshold never reaches a lapsed threshold set by hand: it is then halved.

AT_RISK_FACTOR = 2
AT_RISK_FLOOR_DAYS = 30
AT_RISK_CEILING_DAYS = 365
AT_RISK_FALLBACK_DAYS = 90
LAPSED_FACTOR = 2  # × the at-risk threshold
MIN_REPEAT_CUSTOMERS = 5
DEFAULT_LOYAL_MIN_ORDERS = 4

# The workspace median is a statistic over all its customers: too costly to recompute for
# every ingested batch, so it is cached; lifecycle_refresh (nightly, and after a settings
# change) recomputes it. A stale value only shifts a threshold by a little for a few hours.
_MEDIAN_CACHE_SECONDS = 6 * 3600


def _median_cache_key(workspace_id: int) -> str:
    return f"audiences:workspace-median-interval:{workspace_id}"


@dataclass(frozen=True)
class WorkspaceInterval:
    median_days: float | None  # None when fewer than MIN_REPEAT_CUSTOMERS repeat customers
    repeat_customers: int


@dataclass(frozen=True)
class LifecycleThresholds:
    loyal_min_orders: int
    at_risk_after_days: int
    lapsed_after_days: int
    # What the derivation gives, shown next to the workspace's own values on the settings page.
    derived_at_risk_after_days: int
    derived_lapsed_after_days: int
    at_risk_is_derived: bool
    lapsed_is_derived: bool
    interval: WorkspaceInterval


def workspace_interval(*, workspace_id: int, fresh: bool = False) -> WorkspaceInterval:
    key = _median_cache_key(workspace_id)
    if not fresh:
        try:
            cached = cache.get(key)
        except Exception:  # the cache only saves a query; Redis trouble must not stop facts
            logger.warning("cache unavailable for the workspace interval", exc_info=True)
            cached = None
        if cached is not None:
            return WorkspaceInterval(median_days=cached[0], repeat_customers=cached[1])
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY median_days_between_orders), count(*)
            FROM audiences_customerfacts
            WHERE workspace_id = %s AND median_days_between_orders IS NOT NULL AND orders_count >= 2
            """,
            [workspace_id],
        )
        median, count = cursor.fetchone()
    interval = WorkspaceInterval(
        median_days=float(median) if median is not None and count >= MIN_REPEAT_CUSTOMERS else None,
        repeat_customers=int(count),
    )
    try:
        cache.set(key, (interval.median_days, interval.repeat_customers), _MEDIAN_CACHE_SECONDS)
    except Exception:
        logger.warning("cache unavailable for the workspace interval", exc_info=True)
    return interval


def lifecycle_thresholds(
    *, workspace_id: int, fresh: bool = False, interval: WorkspaceInterval | None = None
) -> LifecycleThresholds:
    """The workspace's thresholds: its settings, with empty day thresholds derived (from
    `interval` when given: the page passes the one the scoring job stored)."""
    settings = LifecycleSettings.objects.filter(workspace_id=workspace_id).first()
    if interval is None:
        interval = workspace_interval(workspace_id=workspace_id, fresh=fresh)
    if interval.median_days is None:
        derived_at_risk = AT_RISK_FALLBACK_DAYS
    else:
        derived_at_risk = math.ceil(AT_RISK_FACTOR * interval.median_days)
        derived_at_risk = min(max(derived_at_risk, AT_RISK_FLOOR_DAYS), AT_RISK_CEILING_DAYS)
    set_at_risk = settings.at_risk_after_days if settings else None
    set_lapsed = settings.lapsed_after_days if settings else None
    at_risk = set_at_risk if set_at_risk is not None else derived_at_risk
    if set_at_risk is None and set_lapsed is not None and at_risk >= set_lapsed:
        at_risk = max(set_lapsed // 2, 1)
    lapsed = set_lapsed if set_lapsed is not None else LAPSED_FACTOR * at_risk
    return LifecycleThresholds(
        loyal_min_orders=settings.loyal_min_orders if settings else DEFAULT_LOYAL_MIN_ORDERS,
        at_risk_after_days=at_risk,
        lapsed_after_days=lapsed,
        derived_at_risk_after_days=derived_at_risk,
        derived_lapsed_after_days=LAPSED_FACTOR * derived_at_risk,
        at_risk_is_derived=set_at_risk is None,
        lapsed_is_derived=set_lapsed is None,
        interval=interval,
    )


def _stage_sql(orders: str, last_order: str) -> str:
    """The lifecycle stage as a SQL expression over two columns; parameters %(now)s,
    %(loyal_min)s, %(at_risk_days)s, %(lapsed_days)s."""
    return f"""
        CASE
            WHEN {orders} = 0 OR {last_order} IS NULL THEN '{LifecycleStage.PROSPECT}'
            WHEN {last_order} <= %(now)s - make_interval(days => %(lapsed_days)s) THEN '{LifecycleStage.LAPSED}'
            WHEN {last_order} <= %(now)s - make_interval(days => %(at_risk_days)s) THEN '{LifecycleStage.AT_RISK}'
            WHEN {orders} >= %(loyal_min)s THEN '{LifecycleStage.LOYAL}'
            WHEN {orders} >= 2 THEN '{LifecycleStage.REPEAT}'
            ELSE '{LifecycleStage.FIRST_TIME}'
        END"""


def _stage_params(thresholds: LifecycleThresholds, now: datetime) -> dict[str, Any]:
    return {
        "now": now,
        "loyal_min": thresholds.loyal_min_orders,
        "at_risk_days": thresholds.at_risk_after_days,
        "lapsed_days": thresholds.lapsed_after_days,
    }


# --- purchase facts --------------------------------------------------------------------------


def _money(json_expr: str) -> str:
    """A non-negative amount below 10^10 from a JSON number or numeric string, else NULL.
    Checked by pattern before the cast, so a bad value from a shop never fails the batch."""
    text = f"btrim({json_expr} #>> '{{}}')"
    return (
        f"(CASE WHEN jsonb_typeof({json_expr}) IN ('number', 'string') "
        f"AND {text} ~ '^[0-9]{{1,10}}([.][0-9]+)?$' THEN {text}::numeric END)"
    )


_PRODUCTS_TOTAL = f"""
    (SELECT CASE WHEN s.total < 10000000000 THEN s.total END
     FROM (SELECT SUM({_money("item -> 'price'")} * COALESCE({_money("item -> 'quantity'")}, 1)) AS total
           FROM jsonb_array_elements(r.products) AS item) s)"""  # noqa: S608 — constant fragments only

_FACT_COLUMNS = (
    "orders_count",
    "revenue",
    "average_order_value",
    "refunds_count",
    "refunded",
    "first_order_at",
    "last_order_at",
    "products",
    "categories",
    "median_days_between_orders",
    "predicted_next_order_at",
    "lifecycle_stage",
)

_REFRESH_TEMPLATE = f"""
WITH raw AS (
    SELECT e.id, e.contact_id, e.name, e.occurred_at,
           NULLIF(btrim(e.properties ->> 'order_id'), '') AS order_id,
           {_money("e.properties -> 'total'")} AS total,
           {_money("e.properties -> 'revenue'")} AS revenue,
           CASE WHEN jsonb_typeof(e.properties -> 'products') = 'array'
                THEN e.properties -> 'products' ELSE '[]'::jsonb END AS products
    -- The batch as a joined set, not "contact_id = ANY(array)": on a lossy bitmap (a big
    -- batch) every row of every page was rechecked against the whole array.
    FROM unnest(%(ids)s::bigint[]) AS batch (id) JOIN {{events}} e ON e.contact_id = batch.id
    WHERE e.workspace_id = %(ws)s
      AND e.type = 'track' AND e.name IN (%(completed)s, %(refunded)s)
),
priced AS (
    SELECT r.id, r.contact_id, r.name, r.occurred_at, r.products,
           COALESCE(r.total, r.revenue, {_PRODUCTS_TOTAL}) AS amount,
           CASE WHEN r.name = %(completed)s THEN COALESCE(r.order_id, 'event:' || r.id) ELSE r.order_id END
               AS order_key
    FROM raw r
),
orders AS (
    -- One row per order with its refunds, by grouping (no join): a join between these
    -- intermediate results is planned from a row estimate of a few rows, and a nested loop
    -- over them made the refresh quadratic in the batch size. A repeated order_id is one
    -- order: its earliest event counts.
    SELECT contact_id, order_key,
           min(occurred_at) FILTER (WHERE name = %(completed)s) AS occurred_at,
           (array_agg(COALESCE(amount, 0) ORDER BY occurred_at, id) FILTER (WHERE name = %(completed)s))[1]
               AS amount,
           (array_agg(products ORDER BY occurred_at, id) FILTER (WHERE name = %(completed)s))[1] AS products,
           bool_or(name = %(refunded)s) AS has_refund,
           bool_or(amount IS NULL) FILTER (WHERE name = %(refunded)s) AS full_refund,
           SUM(amount) FILTER (WHERE name = %(refunded)s) AS refund_amount
    FROM priced
    WHERE order_key IS NOT NULL
    GROUP BY contact_id, order_key
    HAVING bool_or(name = %(completed)s)
),
settled AS (
    SELECT contact_id, order_key, occurred_at, amount, products, has_refund,
           CASE WHEN full_refund THEN amount ELSE LEAST(COALESCE(refund_amount, 0), amount) END AS refunded,
           NOT COALESCE(full_refund OR (amount > 0 AND refund_amount >= amount), false) AS counts
    FROM orders
),
gapped AS (
    SELECT s.*, CASE WHEN counts THEN EXTRACT(EPOCH FROM occurred_at - LAG(occurred_at) OVER (
               PARTITION BY contact_id, counts ORDER BY occurred_at, order_key))::float8 / 86400 END AS gap_days,
           false AS target
    FROM settled s
    UNION ALL
    -- Every contact of the batch with orders has a row by now (placeholders, see below); one
    -- with a row but no orders any more is recomputed to zeros.
    SELECT f.contact_id, NULL, NULL, NULL, NULL, false, NULL, false, NULL, true
    -- Probed per contact (OFFSET 0 keeps the subquery apart): hashing the workspace's facts
    -- instead was a fixed cost of a scan of every customer.
    FROM unnest(%(ids)s::bigint[]) AS batch (id) CROSS JOIN LATERAL (
        SELECT f.contact_id FROM audiences_customerfacts f
        WHERE f.contact_id = batch.id AND f.workspace_id = %(ws)s OFFSET 0
    ) f
),
totals AS (
    SELECT contact_id,
           COUNT(*) FILTER (WHERE counts) AS orders_count,
           COALESCE(SUM(amount - refunded) FILTER (WHERE counts), 0) AS revenue,
           COUNT(*) FILTER (WHERE has_refund) AS refunds_count,
           COALESCE(SUM(refunded), 0) AS refunded,
           MIN(occurred_at) FILTER (WHERE counts) AS first_order_at,
           MAX(occurred_at) FILTER (WHERE counts) AS last_order_at,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY gap_days) AS median_days,
           jsonb_agg(products) FILTER (WHERE counts) AS bought
    FROM gapped
    GROUP BY contact_id
    HAVING bool_or(target)
)
INSERT INTO audiences_customerfacts AS cf (
    contact_id, workspace_id, {", ".join(_FACT_COLUMNS)},
    recency_score, frequency_score, monetary_score, rfm_segment, updated_at
)
SELECT tt.contact_id, %(ws)s, tt.orders_count, tt.revenue,
       round(tt.revenue / NULLIF(tt.orders_count, 0), 2), tt.refunds_count, tt.refunded,
       tt.first_order_at, tt.last_order_at,
       ARRAY(SELECT DISTINCT left(COALESCE(NULLIF(btrim(item ->> 'product_id'), ''),
                                           NULLIF(btrim(item ->> 'sku'), '')), 128) AS product
             FROM jsonb_array_elements(COALESCE(tt.bought, '[]')) AS o, jsonb_array_elements(o) AS item
             WHERE COALESCE(NULLIF(btrim(item ->> 'product_id'), ''), NULLIF(btrim(item ->> 'sku'), '')) IS NOT NULL
             ORDER BY 1),
       ARRAY(SELECT DISTINCT left(NULLIF(btrim(item ->> 'category'), ''), 128)
             FROM jsonb_array_elements(COALESCE(tt.bought, '[]')) AS o, jsonb_array_elements(o) AS item
             WHERE NULLIF(btrim(item ->> 'category'), '') IS NOT NULL
             ORDER BY 1),
       tt.median_days, tt.last_order_at + tt.median_days * interval '1 day',
       {_stage_sql("tt.orders_count", "tt.last_order_at")},
       NULL, NULL, NULL, '', %(now)s
FROM totals tt
ON CONFLICT (contact_id) DO UPDATE SET
    {", ".join(f"{column} = EXCLUDED.{column}" for column in _FACT_COLUMNS)},
    -- Scores are the nightly ranking's; they stay until its next run, except that a contact
    -- left without orders is no longer ranked at all.
    recency_score = CASE WHEN EXCLUDED.orders_count = 0 THEN NULL ELSE cf.recency_score END,
    frequency_score = CASE WHEN EXCLUDED.orders_count = 0 THEN NULL ELSE cf.frequency_score END,
    monetary_score = CASE WHEN EXCLUDED.orders_count = 0 THEN NULL ELSE cf.monetary_score END,
    rfm_segment = CASE WHEN EXCLUDED.orders_count = 0 THEN '' ELSE cf.rfm_segment END,
    updated_at = EXCLUDED.updated_at
-- Unchanged rows are not rewritten (most batches change nothing for most contacts).
WHERE ({", ".join(f"cf.{column}" for column in _FACT_COLUMNS)})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{column}" for column in _FACT_COLUMNS)})
"""  # noqa: S608 — only constant fragments and column names are formatted in; values are parameters


_PLACEHOLDERS_TEMPLATE = f"""
INSERT INTO audiences_customerfacts (
    contact_id, workspace_id, orders_count, revenue, refunds_count, refunded, products, categories,
    rfm_segment, lifecycle_stage, updated_at
)
SELECT c.id, %(ws)s, 0, 0, 0, 0, '{{}}', '{{}}', '', '{LifecycleStage.PROSPECT}', %(now)s
FROM audiences_contact c
WHERE c.workspace_id = %(ws)s AND c.id IN (SELECT batch.id FROM unnest(%(ids)s::bigint[]) AS batch (id))
  AND EXISTS (
      SELECT 1 FROM {{events}} e
      WHERE e.contact_id = c.id AND e.workspace_id = %(ws)s AND e.type = 'track' AND e.name = %(completed)s
  )
ORDER BY c.id
ON CONFLICT (contact_id) DO NOTHING
"""  # noqa: S608 — a constant; values are parameters


# Both read the event store, or (a whole-workspace rebuild) a copy of its order events.
_REFRESH_SQL = _REFRESH_TEMPLATE.replace("{events}", "audiences_event")
_PLACEHOLDERS_SQL = _PLACEHOLDERS_TEMPLATE.replace("{events}", "audiences_event")
_STAGED = "facts_rebuild_orders"


def purchase_facts_refresh(*, workspace_id: int, contact_ids: Collection[int], now: datetime | None = None) -> None:
    """Recompute the purchase facts (and lifecycle stage) of these contacts of the workspace
    from all their order events, in one statement. Ids of other workspaces are ignored."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The shared workspace lock lets many batches run together while a workspace-wide
        # scoring (exclusive, see _workspace_lock) waits for them, and they for it: the scoring
        # UPDATE locks rows in scan order, a batch in id order, and the two must not deadlock.
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [_LOCK_WORKSPACE, _lock_key(workspace_id)])
        _refresh(cursor, workspace_id, contact_ids, now or timezone.now(), staged=False)


def _refresh(
    cursor: CursorWrapper, workspace_id: int, contact_ids: Collection[int], now: datetime, *, staged: bool
) -> None:
    ids = sorted({int(contact_id) for contact_id in contact_ids})
    if not ids:
        return
    thresholds = lifecycle_thresholds(workspace_id=workspace_id)
    params: dict[str, Any] = {
        "ws": workspace_id,
        "ids": ids,
        "completed": ORDER_COMPLETED,
        "refunded": ORDER_REFUNDED,
        **_stage_params(thresholds, now),
    }
    # JIT compiling this statement (its cost estimate passes jit_above_cost from about a
    # thousand contacts on) took longer than running it: 1.5 of 2.4 s for 10,000 contacts.
    cursor.execute("SET LOCAL jit = off")
    # Two refreshes of the same contact must not interleave: each statement sees the events
    # committed when it starts, so the older snapshot could overwrite newer facts. Every
    # contact with orders gets its row first (placeholders, in id order; a concurrent insert
    # of the same row waits for the other transaction), then the rows are locked in id
    # order; the statement after the lock sees all that the other batch committed. Row
    # locks, unlike an advisory lock per contact, cost no shared memory for big batches.
    placeholders, refresh = _PLACEHOLDERS_SQL, _REFRESH_SQL
    lock = "contact_id IN (SELECT batch.id FROM unnest(%(ids)s::bigint[]) AS batch (id))"
    if staged:
        # A rebuild's batch is every contact of the workspace in an id range: as a range, the
        # planner reads just that range of the copy.
        params.update(low=ids[0], high=ids[-1])
        placeholders, refresh = (
            _staged(template).replace(
                "c.id IN (SELECT batch.id FROM unnest(%(ids)s::bigint[]) AS batch (id))",
                "c.id BETWEEN %(low)s AND %(high)s",
            )
            for template in (_PLACEHOLDERS_TEMPLATE, _REFRESH_TEMPLATE)
        )
        lock = "contact_id BETWEEN %(low)s AND %(high)s"
    cursor.execute(placeholders, params)
    cursor.execute(
        f"SELECT contact_id FROM audiences_customerfacts WHERE workspace_id = %(ws)s AND {lock} "  # noqa: S608 — constant
        "ORDER BY contact_id FOR UPDATE",
        params,
    )
    cursor.execute(refresh, params)


def _staged(template: str) -> str:
    return (
        template.replace("{events}", _STAGED)
        .replace(
            "FROM unnest(%(ids)s::bigint[]) AS batch (id) JOIN facts_rebuild_orders e ON e.contact_id = batch.id",
            "FROM facts_rebuild_orders e",
        )
        .replace(
            "WHERE e.workspace_id = %(ws)s\n",
            "WHERE e.workspace_id = %(ws)s AND e.contact_id BETWEEN %(low)s AND %(high)s\n",
        )
        .replace(
            "WHERE f.contact_id = batch.id AND f.workspace_id = %(ws)s OFFSET 0",
            "WHERE f.workspace_id = %(ws)s AND f.contact_id BETWEEN %(low)s AND %(high)s",
        )
        .replace("FROM unnest(%(ids)s::bigint[]) AS batch (id) CROSS JOIN LATERAL (", "FROM (")
    )


def purchase_facts_rebuild(
    *, workspace_id: int, batch_size: int = 5_000, progress: Callable[[int], None] | None = None
) -> int:
    """Recompute the facts of every contact of the workspace (a workspace whose events were
    loaded in bulk, never through the pipeline, has none). Returns contacts visited.

    Refreshing contact batches straight from the event store would read a page per order
    (events lie in time order, a contact's spread over the table): the workspace's order
    events are copied once instead (one pass in page order), sorted by contact, and the
    batches of `batch_size` contacts (keyset by id) read the copy. One transaction, as the
    copy is a temporary table. It holds the workspace lock exclusively: a pipeline refresh
    running meanwhile could see orders the copy has not, and the copy must not undo it; the
    refreshes wait, then recompute from the event store."""
    visited, last_id = 0, 0
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        _workspace_lock(cursor, workspace_id)
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE {_STAGED} ON COMMIT DROP AS
            SELECT id, contact_id, workspace_id, type, name, occurred_at, properties FROM audiences_event
            WHERE workspace_id = %s AND contact_id IS NOT NULL AND type = 'track' AND name IN (%s, %s)
            ORDER BY contact_id
            """,  # noqa: S608 — a constant table name
            [workspace_id, ORDER_COMPLETED, ORDER_REFUNDED],
        )
        cursor.execute(f"CREATE INDEX ON {_STAGED} (contact_id)")
        cursor.execute(f"ANALYZE {_STAGED}")
        while True:
            cursor.execute(
                "SELECT id FROM audiences_contact WHERE workspace_id = %s AND id > %s ORDER BY id LIMIT %s",
                [workspace_id, last_id, batch_size],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return visited
            _refresh(cursor, workspace_id, ids, now, staged=True)
            visited, last_id = visited + len(ids), ids[-1]
            if progress:
                progress(visited)


def _lock_key(value: int) -> int:
    return int(value) % 2_147_483_647


def _workspace_lock(cursor: CursorWrapper, workspace_id: int) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_WORKSPACE, _lock_key(workspace_id)])


# --- RFM scoring -----------------------------------------------------------------------------


def _grid_values() -> tuple[str, dict[str, Any]]:
    """The segment table as a VALUES list of named placeholders, and their values."""
    rows: list[str] = []
    params: dict[str, Any] = {}
    for recency, by_fm in RFM_SEGMENT_GRID.items():
        for fm, segment in enumerate(by_fm, start=1):
            key = f"g{recency}{fm}"
            rows.append(f"({recency}, {fm}, %({key})s)")
            params[key] = str(segment)
    return ", ".join(rows), params


def _tile_sql(rank: str) -> str:
    """NTILE(5)'s tile of the row at position `rank` among %(n)s rows, by arithmetic: the first
    %(r)s tiles hold %(q)s + 1 rows, the others %(q)s. With rank() (1 + the rows of a lower
    value), that is the tile of a value's first row: the lowest tile its value reaches."""
    return f"""(CASE WHEN {rank} <= %(r)s * (%(q)s + 1) THEN ({rank} - 1) / (%(q)s + 1) + 1
                 ELSE %(r)s + ({rank} - 1 - %(r)s * (%(q)s + 1)) / %(q)s + 1 END)"""


def rfm_score(*, workspace_id: int, now: datetime | None = None) -> int:
    """Score every customer of the workspace (see the comment on RFM above); returns how many
    were scored. Contacts without a counted order lose any score they had.

    The tile follows by arithmetic from a value's rank and the number of customers, instead
    of NTILE and a second window per score: one sort (recency, nearly unique values), two
    hashed histograms (frequency, monetary), and only rows whose scores change are written
    (a nightly run rewrites few of them)."""
    now = now or timezone.now()
    grid, params = _grid_values()
    with transaction.atomic(), connection.cursor() as cursor:
        _workspace_lock(cursor, workspace_id)
        cursor.execute(
            """
            SELECT count(*) FROM audiences_customerfacts
            WHERE workspace_id = %s AND orders_count > 0 AND last_order_at IS NOT NULL
            """,
            [workspace_id],
        )
        scored = int(cursor.fetchone()[0])
        params.update(ws=workspace_id, now=now, q=scored // 5, r=scored % 5)
        if scored:
            cursor.execute(
                f"""
                WITH f_ranks AS (
                    -- Frequency and monetary values repeat a lot: their rank (1 + the customers
                    -- of a lower value) comes from a histogram of the values, hashed, not sorted.
                    SELECT orders_count,
                           (1 + COALESCE(SUM(count(*)) OVER (ORDER BY orders_count
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))::bigint AS f_rank
                    FROM audiences_customerfacts
                    WHERE workspace_id = %(ws)s AND orders_count > 0 AND last_order_at IS NOT NULL
                    GROUP BY orders_count
                ),
                m_ranks AS (
                    SELECT revenue,
                           (1 + COALESCE(SUM(count(*)) OVER (ORDER BY revenue
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))::bigint AS m_rank
                    FROM audiences_customerfacts
                    WHERE workspace_id = %(ws)s AND orders_count > 0 AND last_order_at IS NOT NULL
                    GROUP BY revenue
                ),
                ranked AS (
                    SELECT cf.contact_id, cf.recency_score, cf.frequency_score, cf.monetary_score, cf.rfm_segment,
                           rank() OVER (ORDER BY cf.last_order_at) AS r_rank, fr.f_rank, mr.m_rank
                    FROM audiences_customerfacts cf
                    JOIN f_ranks fr ON fr.orders_count = cf.orders_count
                    JOIN m_ranks mr ON mr.revenue = cf.revenue
                    WHERE cf.workspace_id = %(ws)s AND cf.orders_count > 0 AND cf.last_order_at IS NOT NULL
                ),
                scores AS (
                    SELECT contact_id, recency_score, frequency_score, monetary_score, rfm_segment,
                           {_tile_sql("r_rank")} AS r, {_tile_sql("f_rank")} AS f, {_tile_sql("m_rank")} AS m
                    FROM ranked
                ),
                grid (r, fm, segment) AS (VALUES {grid}),
                changed AS (
                    -- Compared in the same scan that ranked them: the UPDATE then joins only the
                    -- rows that change (a nightly re-run: few), not every customer.
                    SELECT s.contact_id, s.r, s.f, s.m, grid.segment
                    FROM scores s JOIN grid ON grid.r = s.r AND grid.fm = (s.f + s.m + 1) / 2
                    WHERE (s.recency_score, s.frequency_score, s.monetary_score, s.rfm_segment)
                          IS DISTINCT FROM (s.r::smallint, s.f::smallint, s.m::smallint, grid.segment::varchar)
                )
                UPDATE audiences_customerfacts cf
                SET recency_score = c.r, frequency_score = c.f, monetary_score = c.m,
                    rfm_segment = c.segment, rfm_scored_at = %(now)s
                FROM changed c
                WHERE cf.contact_id = c.contact_id AND cf.workspace_id = %(ws)s
                """,  # noqa: S608 — constant fragments; every value is a parameter
                params,
            )
        cursor.execute(
            """
            UPDATE audiences_customerfacts
            SET recency_score = NULL, frequency_score = NULL, monetary_score = NULL, rfm_segment = ''
            WHERE workspace_id = %s AND (orders_count = 0 OR last_order_at IS NULL)
              AND (recency_score IS NOT NULL OR rfm_segment <> '')
            """,
            [workspace_id],
        )
    return scored


def rfm_ntile_baseline(*, workspace_id: int) -> int:
    """A single NTILE pass over the rows rfm_score ranks, nothing written: the yardstick the
    scoring is measured against (bench/million.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM (
                SELECT NTILE(5) OVER (ORDER BY last_order_at) AS tile FROM audiences_customerfacts
                WHERE workspace_id = %s AND orders_count > 0 AND last_order_at IS NOT NULL
            ) t WHERE tile IS NOT NULL
            """,
            [workspace_id],
        )
        return int(cursor.fetchone()[0])


# --- lifecycle -------------------------------------------------------------------------------


def lifecycle_refresh(*, workspace_id: int, now: datetime | None = None) -> int:
    """Recompute every customer's lifecycle stage (time passes: customers drift into at risk
    and lapsed without any new event). Also refreshes the cached workspace median first.
    Returns how many contacts changed stage."""
    thresholds = lifecycle_thresholds(workspace_id=workspace_id, fresh=True)
    params = {"ws": workspace_id, **_stage_params(thresholds, now or timezone.now())}
    with transaction.atomic(), connection.cursor() as cursor:
        _workspace_lock(cursor, workspace_id)
        stage = _stage_sql("orders_count", "last_order_at")
        cursor.execute(
            f"""
            UPDATE audiences_customerfacts SET lifecycle_stage = {stage}
            WHERE workspace_id = %(ws)s AND lifecycle_stage IS DISTINCT FROM ({stage})
            """,  # noqa: S608 — a constant expression; values are parameters
            params,
        )
        return cursor.rowcount


@transaction.atomic
def lifecycle_settings_save(
    *,
    workspace: Workspace,
    loyal_min_orders: int,
    at_risk_after_days: int | None,
    lapsed_after_days: int | None,
) -> LifecycleSettings:
    """Store the workspace's thresholds (None = derive). Stages are recomputed by a queued
    lifecycle refresh, not here: on a big workspace that is a long UPDATE."""
    errors: dict[str, str] = {}
    if loyal_min_orders < 2:
        errors["loyal_min_orders"] = _("A loyal customer has at least 2 orders.")
    for name, value in (("at_risk_after_days", at_risk_after_days), ("lapsed_after_days", lapsed_after_days)):
        if value is not None and not 1 <= value <= 3650:
            errors[name] = _("Between 1 and 3650 days.")
    if at_risk_after_days is not None and lapsed_after_days is not None and lapsed_after_days <= at_risk_after_days:
        errors["lapsed_after_days"] = _("Must be more days than “at risk”.")
    if errors:
        raise ValidationError(errors)
    from audiences.tasks import refresh_lifecycle

    settings, _created = LifecycleSettings.objects.update_or_create(
        workspace=workspace,
        defaults={
            "loyal_min_orders": loyal_min_orders,
            "at_risk_after_days": at_risk_after_days,
            "lapsed_after_days": lapsed_after_days,
            "updated_at": timezone.now(),
        },
    )
    enqueue_after_commit(refresh_lifecycle, workspace.pk)
    return settings


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


def insight_figures_refresh(*, workspace_id: int, scored_at: datetime | None = None) -> InsightFigures:
    """Compute and store the figures of the RFM and lifecycle pages: one scan of the
    workspace's facts (grouping sets), one count of its contacts. Run by the scoring job."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT GROUPING(recency_score, frequency_score, rfm_segment, lifecycle_stage),
                   recency_score, frequency_score, rfm_segment, lifecycle_stage,
                   count(*), avg(revenue), min(orders_count), max(orders_count)
            FROM audiences_customerfacts
            WHERE workspace_id = %s
            GROUP BY GROUPING SETS ((recency_score, frequency_score), (rfm_segment), (lifecycle_stage))
            """,
            [workspace_id],
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM audiences_contact WHERE workspace_id = %s", [workspace_id])
        contacts = int(cursor.fetchone()[0])
    cells: dict[str, int] = {}
    frequency: dict[str, list[int]] = {}
    segments: dict[str, list[Any]] = {}
    stages: dict[str, int] = {}
    for grouping, recency, freq, segment, stage, n, average, low, high in rows:
        if grouping == 0b0011:  # (recency, frequency)
            if recency is None or freq is None:
                continue
            cells[f"{recency},{freq}"] = n
            span = frequency.setdefault(str(freq), [low, high])
            span[0], span[1] = min(span[0], low), max(span[1], high)
        elif grouping == 0b1101:  # (rfm_segment)
            if segment:
                segments[segment] = [n, None if average is None else str(Decimal(average).quantize(Decimal("0.01")))]
        elif grouping == 0b1110:  # (lifecycle_stage)
            stages[stage] = n
    interval = workspace_interval(workspace_id=workspace_id, fresh=True)
    previous = InsightFigures.objects.filter(workspace_id=workspace_id).values_list("scored_at", flat=True).first()
    figures, _created = InsightFigures.objects.update_or_create(
        workspace_id=workspace_id,
        defaults={
            "computed_at": timezone.now(),
            "scored_at": scored_at or previous,
            "scored": sum(cells.values()),
            "rfm_cells": cells,
            "rfm_segments": segments,
            "frequency_orders": frequency,
            "stages": stages,
            "contacts": contacts,
            "median_days": interval.median_days,
            "repeat_customers": interval.repeat_customers,
        },
    )
    return figures
