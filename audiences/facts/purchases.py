"""Purchase facts of contacts, recomputed from their order events.

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

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from audiences import hooks
from audiences.facts.lifecycle import _stage_params, _stage_sql, lifecycle_thresholds
from audiences.facts.locks import LOCK_WORKSPACE, lock_key, workspace_lock
from audiences.models import LifecycleStage

ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"


def _money(json_expr: str) -> str:
    """A non-negative amount below 10^10 from a JSON number or numeric string, else NULL.
    Checked by pattern before the cast, so a bad value from a shop never fails the batch."""
    text = f"btrim({json_expr} #>> '{{}}')"
    return (
        f"(CASE WHEN jsonb_typeof({json_expr}) IN ('number', 'string') "
        f"AND {text} ~ '^[0-9]{{1,10}}([.][0-9]+)?$' THEN {text}::numeric END)"
    )


def _products_total(products: str) -> str:
    """Σ price × quantity over a JSON array of products (NULL when none is priced)."""
    return f"""
    (SELECT CASE WHEN s.total < 10000000000 THEN s.total END
     FROM (SELECT SUM({_money("item -> 'price'")} * COALESCE({_money("item -> 'quantity'")}, 1)) AS total
           FROM jsonb_array_elements({products}) AS item) s)"""  # noqa: S608 — constant fragments only


_PRODUCTS_TOTAL = _products_total("r.products")


def event_amount_sql(properties: str, *, also: tuple[str, ...] = ()) -> str:
    """The SQL amount of an event whose properties are the JSON expression `properties`, read as
    an order's amount is read here: `total`, else `revenue`, else Σ products, then each property
    of `also` in turn; NULL when none holds an amount. For other apps' figures (a series' goal
    revenue) that must agree with the purchase facts."""
    products = (
        f"(CASE WHEN jsonb_typeof({properties} -> 'products') = 'array' "
        f"THEN {properties} -> 'products' ELSE '[]'::jsonb END)"
    )
    parts = [_money(f"{properties} -> 'total'"), _money(f"{properties} -> 'revenue'"), _products_total(products)]
    parts += [_money(f"{properties} -> '{name}'") for name in also if name.isidentifier()]
    return f"COALESCE({', '.join(parts)})"


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
        # scoring (exclusive, see locks.workspace_lock) waits for them, and they for it: the scoring
        # UPDATE locks rows in scan order, a batch in id order, and the two must not deadlock.
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [LOCK_WORKSPACE, lock_key(workspace_id)])
        changes = _refresh(cursor, workspace_id, contact_ids, now or timezone.now(), staged=False)
        # A first order, a repeat one, a refund that takes the last order back: the stage moved.
        hooks.stage_changes_fire(workspace_id, changes)


def _refresh(
    cursor: CursorWrapper, workspace_id: int, contact_ids: Collection[int], now: datetime, *, staged: bool
) -> list[tuple[int, str, str]]:
    """Recompute a batch; the (contact, field, new value) of stages and segments it changed."""
    ids = sorted({int(contact_id) for contact_id in contact_ids})
    if not ids:
        return []
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
        f"SELECT contact_id, lifecycle_stage, rfm_segment FROM audiences_customerfacts "  # noqa: S608 — constant
        f"WHERE workspace_id = %(ws)s AND {lock} ORDER BY contact_id FOR UPDATE",
        params,
    )
    before = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    cursor.execute(refresh + " RETURNING contact_id, lifecycle_stage, rfm_segment", params)
    changes: list[tuple[int, str, str]] = []
    for contact_id, stage, segment in cursor.fetchall():
        old_stage, old_segment = before.get(contact_id, ("", ""))
        if stage != old_stage:
            changes.append((contact_id, "lifecycle_stage", stage))
        if segment != old_segment:
            changes.append((contact_id, "rfm_segment", segment))
    return changes


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
    refreshes wait, then recompute from the event store.

    It tells no one of the stages it changes: it restores derived figures of a workspace's
    whole history (loaded in bulk), and a stage trigger would take every customer as having
    just changed."""
    visited, last_id = 0, 0
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        workspace_lock(cursor, workspace_id)
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
