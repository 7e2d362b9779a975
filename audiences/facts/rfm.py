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
        workspace_lock(cursor, workspace_id)
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
                    SELECT s.contact_id, s.r, s.f, s.m, grid.segment, s.rfm_segment AS old_segment
                    FROM scores s JOIN grid ON grid.r = s.r AND grid.fm = (s.f + s.m + 1) / 2
                    WHERE (s.recency_score, s.frequency_score, s.monetary_score, s.rfm_segment)
                          IS DISTINCT FROM (s.r::smallint, s.f::smallint, s.m::smallint, grid.segment::varchar)
                )
                UPDATE audiences_customerfacts cf
                SET recency_score = c.r, frequency_score = c.f, monetary_score = c.m,
                    rfm_segment = c.segment, rfm_scored_at = %(now)s
                FROM changed c
                WHERE cf.contact_id = c.contact_id AND cf.workspace_id = %(ws)s
                RETURNING cf.contact_id, c.segment, c.old_segment
                """,  # noqa: S608 — constant fragments; every value is a parameter
                params,
            )
            # Customers who moved to another segment ("became at risk"): the layers above hear it.
            hooks.stage_changes_fire(
                workspace_id,
                ((row[0], "rfm_segment", row[1]) for row in cursor.fetchall() if row[1] != row[2]),
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
