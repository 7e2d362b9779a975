"""RFM scores: quintiles of recency, frequency and monetary value within a workspace, and the
named segment of each score triple."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audiences import hooks
from audiences.facts.locks import workspace_lock
from audiences.models import RfmSegment

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


def _segments_by_cell() -> list[str]:
    """The segment table flattened, at (R - 1) * 5 + FM (1-based, as SQL arrays are): the
    scoring looks a customer's segment up by position, not by a join."""
    return [str(segment) for recency in range(1, 6) for segment in RFM_SEGMENT_GRID[recency]]


# The customers scored: the predicate of the partial index facts_rfm_rank, which holds every
# column the scoring reads. Its passes ask for index order so that the planner reads that
# narrow index rather than the wide table (a sort of the table would cost more than the index).
_CUSTOMERS = "workspace_id = %(ws)s AND orders_count > 0 AND last_order_at IS NOT NULL"


def _tile_sql(value: str, ends: str) -> str:
    """The tile of `value`: the highest k whose tile end (`ends` 2..5: e.r2 … e.r5) it is
    above, else 1. A missing end (a tile past the last customer) is never passed. A CASE, not a
    sum of four tests: most values stop at the first or second."""
    tests = " ".join(f"WHEN {value} > {ends}{k} THEN {k}" for k in range(5, 1, -1))
    return f"(CASE {tests} ELSE 1 END)"


# Where tile_ends finds recency's ends r2..r5: the first and last of two windows of the index,
# positions s2 - 1 … s3 - 1 from the oldest and s4 - 1 … s5 - 1 from the newest (together
# 4 / 5 of the customers walked, not 6 / 5 with a walk to each end). Positions s_k - 1 lie
# within 1 … n whenever n > 0.
_RECENCY_ENDS = ((2, "older", "lo"), (3, "older", "hi"), (4, "newer", "lo"), (5, "newer", "hi"))
_RECENCY_WINDOWS = f"""
    CROSS JOIN LATERAL (
        SELECT min(v) AS lo, max(v) AS hi FROM (
            SELECT last_order_at AS v FROM audiences_customerfacts WHERE {_CUSTOMERS}
            ORDER BY last_order_at OFFSET GREATEST(t.s2 - 2, 0) LIMIT t.s3 - t.s2 + 1) w
    ) older
    CROSS JOIN LATERAL (
        SELECT min(v) AS lo, max(v) AS hi FROM (
            SELECT last_order_at AS v FROM audiences_customerfacts WHERE {_CUSTOMERS}
            ORDER BY last_order_at DESC OFFSET GREATEST(t.n - t.s5 + 1, 0) LIMIT t.s5 - t.s4 + 1) w
    ) newer"""  # noqa: S608 — constant fragments


def _tile_ends_sql() -> str:
    """The select list of tile_ends: r2..r5, f2..f5, m2..m5, the values that end tiles 1..4 of
    each score (see rfm_score), over tile_starts t and the recency windows."""
    ends = [f"CASE WHEN t.n > 0 THEN {side}.{edge} END AS r{k}" for k, side, edge in _RECENCY_ENDS]
    for score, below in (("f", "f_below"), ("m", "m_below")):
        # The lowest value with at least s_k - 1 customers at or below it.
        ends += [f"(SELECT min(v) FROM {below} WHERE up_to >= t.s{k} - 1) AS {score}{k}" for k in range(2, 6)]  # noqa: S608
    return ", ".join(ends)


def rfm_score(*, workspace_id: int, now: datetime | None = None) -> int:
    """Score every customer of the workspace (see the comment on RFM above); returns how many
    were scored. Contacts without a counted order lose any score they had.

    No window and no sort over the customers. With n customers, NTILE's tile k (2..5) starts at
    a known position s_k (the first n % 5 tiles hold one row more), and the lowest tile a value
    reaches is k when more than s_k - 1 customers have a lower value: when the value is above
    the one at position s_k - 1, the tile's end. So each score needs four values: frequency's
    and monetary's come from histograms of their values (one pass builds both, hashed), and
    recency's, whose values hardly repeat, are read from the index by position. A last pass
    compares each customer's tiles with its stored scores and writes only those that change
    (a nightly run rewrites few)."""
    now = now or timezone.now()
    params: dict[str, Any] = {"ws": workspace_id, "now": now, "segments": _segments_by_cell()}
    with transaction.atomic(), connection.cursor() as cursor:
        workspace_lock(cursor, workspace_id)
        cursor.execute(
            f"""
            WITH pairs AS MATERIALIZED (
                -- One hash per customer (grouping sets would hash each twice): the histogram of
                -- (frequency, monetary) pairs, then one of each from its few rows.
                SELECT orders_count, revenue, count(*) AS n
                FROM (SELECT orders_count, revenue FROM audiences_customerfacts WHERE {_CUSTOMERS}
                      ORDER BY last_order_at) c
                GROUP BY orders_count, revenue
            ),
            histogram AS MATERIALIZED (
                SELECT orders_count, revenue, GROUPING(orders_count) AS of_revenue, sum(n) AS n
                FROM pairs GROUP BY GROUPING SETS ((orders_count), (revenue))
            ),
            tile_starts AS MATERIALIZED (
                SELECT n, 1 * q + LEAST(1, r) + 1 AS s2, 2 * q + LEAST(2, r) + 1 AS s3,
                       3 * q + LEAST(3, r) + 1 AS s4, 4 * q + LEAST(4, r) + 1 AS s5
                FROM (SELECT n, n / 5 AS q, n %% 5 AS r
                      FROM (SELECT COALESCE(sum(n), 0)::bigint AS n FROM histogram WHERE of_revenue = 0) c) s
            ),
            f_below AS (  -- each frequency value and the customers at or below it
                SELECT orders_count AS v, sum(n) OVER (ORDER BY orders_count) AS up_to
                FROM histogram WHERE of_revenue = 0
            ),
            m_below AS (
                SELECT revenue AS v, sum(n) OVER (ORDER BY revenue) AS up_to
                FROM histogram WHERE of_revenue = 1
            ),
            tile_ends AS MATERIALIZED (
                SELECT {_tile_ends_sql()} FROM tile_starts t {_RECENCY_WINDOWS}
            ),
            scores AS (
                SELECT cf.contact_id, cf.recency_score, cf.frequency_score, cf.monetary_score, cf.rfm_segment,
                       {_tile_sql("cf.last_order_at", "e.r")} AS r,
                       {_tile_sql("cf.orders_count", "e.f")} AS f,
                       {_tile_sql("cf.revenue", "e.m")} AS m
                FROM (SELECT contact_id, last_order_at, orders_count, revenue, recency_score, frequency_score,
                             monetary_score, rfm_segment
                      FROM audiences_customerfacts WHERE {_CUSTOMERS} ORDER BY last_order_at) cf
                CROSS JOIN tile_ends e
            ),
            changed AS MATERIALIZED (
                SELECT contact_id, r, f, m, segment, rfm_segment AS old_segment
                -- The names as a text[] constant (a cast of the array would be redone per row),
                -- short: reading an element walks those before it.
                FROM (SELECT s.*, (%(segments)s)[(s.r - 1) * 5 + (s.f + s.m + 1) / 2] AS segment
                      FROM scores s) s
                WHERE (recency_score, frequency_score, monetary_score, rfm_segment::text)
                      IS DISTINCT FROM (r::smallint, f::smallint, m::smallint, segment)
            ),
            written AS (
                UPDATE audiences_customerfacts cf
                SET recency_score = c.r, frequency_score = c.f, monetary_score = c.m,
                    rfm_segment = c.segment, rfm_scored_at = %(now)s
                FROM changed c
                -- By primary key, row by row: the planner cannot tell that few rows change and
                -- would otherwise hash the whole table to join them.
                WHERE cf.contact_id = ANY (ARRAY(SELECT contact_id FROM changed))
                  AND cf.contact_id = c.contact_id AND cf.workspace_id = %(ws)s
                RETURNING cf.contact_id, c.segment, c.old_segment
            ),
            moved AS (SELECT contact_id, segment FROM written WHERE segment IS DISTINCT FROM old_segment::text)
            SELECT n, (SELECT count(*) FROM written),
                   ARRAY(SELECT contact_id FROM moved), ARRAY(SELECT segment FROM moved)
            FROM tile_starts
            """,  # noqa: S608 — constant fragments; every value is a parameter
            params,
        )
        scored, _written, moved_ids, moved_segments = cursor.fetchone()
        scored = int(scored)
        # Customers who moved to another segment ("became at risk"): the layers above hear it.
        hooks.stage_changes_fire(
            workspace_id,
            (
                (contact_id, "rfm_segment", segment)
                for contact_id, segment in zip(moved_ids, moved_segments, strict=True)
            ),
        )
        cursor.execute(
            """
            UPDATE audiences_customerfacts
            SET recency_score = NULL, frequency_score = NULL, monetary_score = NULL, rfm_segment = ''
            WHERE workspace_id = %s AND NOT (orders_count > 0 AND last_order_at IS NOT NULL)
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
