"""Attribution: which email earned an order, and the conversions and revenue of the reports.

The rule (last touch, as the Overview page says it):

- An order is a track event "Order Completed", read as audiences.facts.purchases reads it (its
  key `order_id`, else the event; the earliest event of a repeated order_id; the amount
  `total`, else `revenue`, else Σ products; "Order Refunded" of the same contact and order_id
  gives back its amount, or everything without one, capped at the order's amount).
- It is attributed to the email whose link the contact last clicked within the workspace's
  click window (AttributionSettings.click_days, default 5) before the order; else to the email
  the contact last opened within the open window (open_days, default 5). A click is an open
  too, as in analytics.kpis. Only what people did counts: machine opens (Apple Mail Privacy
  Protection, scanners) and scanner clicks (MessageEvent.is_machine) never attribute. Test
  sends never do. Both windows include their edges: a click exactly 5 days before counts.
- The conversion and its revenue (amount − refunded) count on the attributed MESSAGE's
  DailyRollup row (its day, broadcast / series step / template), so a broadcast's revenue is
  the sum of its days' rows and the per-source totals add up to the Overview's. An order
  refunded in full is no conversion any more and brings nothing.
- Every order, attributed or not, also counts in DailyOrders on its own day (the shop's
  orders and revenue, against which email's share is read).

How it is kept (set-based SQL, DESIGN rule 10), beside the rollup refresh and under its lock:

- *Incrementally* (tasks.refresh_rollups, every 15 s): event-store ids past a watermark
  (AttributionState; id ranges passed before their rows committed are re-read for
  GAP_LIFETIME, as the rollup refresh does). Each order or refund read names an order (contact,
  key); that order's row is recomputed from all its events (so a refund, before or after its
  order, and a retried order all land), and the money of every rollup row it moves is summed
  again from the Attribution rows.
- *An order is attributed once, when first read*: a click whose event arrives after that (a
  provider's webhook that came late) does not move it. Moving it later would shift revenue
  between emails on days already reported and read by people; a late touch is rare, and
  the rebuild settles it. An order whose sender was not yet identified when it was read (its
  contact linked later) is attributed by the nightly rebuild of the last days likewise.
- *The rebuild* (rollups_rebuild, `manage.py analytics_rebuild`, the nightly rebuild of the
  last days, and saving the windows) recomputes the attribution of the orders placed in its
  period from the raw rows, with the windows as they are now.
"""

# SQL here is built from table names and constants only; values are parameters.
# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from analytics import rollups
from analytics.kpis import COUNTER_NAMES, TEST_MESSAGE_SQL
from analytics.models import (
    Attribution,
    AttributionGap,
    AttributionSettings,
    AttributionState,
    DailyOrders,
    DailyRollup,
)
from audiences.facts.purchases import ORDER_COMPLETED, ORDER_REFUNDED, event_amount_sql
from audiences.models import Event
from campaigns.models import Message, MessageEvent, MessageEventType
from esp.models import Workspace
from esp.queue import enqueue_after_commit

EVENT_BATCH = 50_000
GAP_LIFETIME = rollups.GAP_LIFETIME
REFRESH_BUDGET_SECONDS = 20.0

_EV = Event._meta.db_table
_ME = MessageEvent._meta.db_table
_M = Message._meta.db_table
_A = Attribution._meta.db_table
_ROLLUP = DailyRollup._meta.db_table
_ORDERS = DailyOrders._meta.db_table
_GAP = AttributionGap._meta.db_table

_AMOUNT = event_amount_sql("e.properties")
_ORDER_ID = "NULLIF(btrim(e.properties ->> 'order_id'), '')"
# An order event's key, as the purchase facts key it.
_ORDER_KEY = f"left(coalesce({_ORDER_ID}, 'event:' || e.id), 255)"
_ORDER_EVENTS = f"e.type = 'track' AND e.name IN ('{ORDER_COMPLETED}', '{ORDER_REFUNDED}')"

# Each workspace's zone and windows (alias z, as analytics.rollups' DIMENSIONS_SQL reads z.tz).
SETTINGS_CTE = """z AS (
    SELECT * FROM unnest(%(ws)s::bigint[], %(tz)s::text[], %(click_days)s::int[], %(open_days)s::int[])
        AS z(workspace_id, tz, click_days, open_days)
)"""

_DIMS = "day, kind, object_id, step_key, template_id"
_COLUMNS = (
    "workspace_id, contact_id, order_key, order_event_id, ordered_at, order_day, amount, refunded, counts, "
    f"message_id, touch, touched_at, {_DIMS}"
)


def _last_touch(touch: str, types: str, days: str) -> str:
    """The contact's last human `types` event within `days` before the order (alias o), of a
    message that is not a test: read backwards on the engagement index."""
    return f"""(
        SELECT e.message_id, '{touch}'::text AS touch, e.occurred_at AS touched_at
        FROM {_ME} e JOIN {_M} m ON m.id = e.message_id
        WHERE e.contact_id = o.contact_id AND e.workspace_id = o.workspace_id AND NOT e.is_machine
          AND e.type IN ({types}) AND {days} > 0
          AND e.occurred_at <= o.ordered_at AND e.occurred_at >= o.ordered_at - {days} * interval '1 day'
          AND NOT {TEST_MESSAGE_SQL}
        ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1
    )"""


_CLICK = _last_touch("click", f"'{MessageEventType.CLICKED}'", "z.click_days")
_OPEN = _last_touch("open", f"'{MessageEventType.OPENED}', '{MessageEventType.CLICKED}'", "z.open_days")


def attributed_orders_sql(keys: str, *, pinned: bool) -> str:
    """A SELECT of the Attribution rows (columns `_COLUMNS`) of the orders named by `keys`, a
    relation of (workspace_id, contact_id, order_key), from the raw events. `pinned`: an order
    that already has a row keeps its email (the refresh); else it is attributed again."""
    keep = f"LEFT JOIN {_A} a ON a.workspace_id = o.workspace_id AND a.contact_id = o.contact_id " \
           "AND a.order_key = o.order_key" if pinned else ""  # fmt: skip
    already = "a.id IS NOT NULL" if pinned else "false"
    pick = (lambda column: f"CASE WHEN {already} THEN a.{column} ELSE d.{column} END") if pinned else (
        lambda column: f"d.{column}"
    )  # fmt: skip
    return f"""
    SELECT o.workspace_id, o.contact_id, o.order_key, o.order_event_id, o.ordered_at,
           (o.ordered_at AT TIME ZONE z.tz)::date AS order_day, o.amount,
           CASE WHEN o.full_refund THEN o.amount ELSE least(coalesce(o.refund_amount, 0), o.amount) END AS refunded,
           NOT coalesce(o.full_refund OR (o.amount > 0 AND o.refund_amount >= o.amount), false) AS counts,
           {pick("message_id")} AS message_id, coalesce({pick("touch")}, '') AS touch,
           {pick("touched_at")} AS touched_at,
           {pick("day")} AS day, coalesce({pick("kind")}, '') AS kind, coalesce({pick("object_id")}, 0) AS object_id,
           coalesce({pick("step_key")}, '') AS step_key, coalesce({pick("template_id")}, 0) AS template_id
    FROM (
        SELECT k.workspace_id, k.contact_id, k.order_key, first.id AS order_event_id,
               first.occurred_at AS ordered_at, first.amount, refunds.full_refund, refunds.refund_amount
        FROM (SELECT DISTINCT workspace_id, contact_id, order_key FROM {keys}) k
        CROSS JOIN LATERAL (
            SELECT e.id, e.occurred_at, coalesce({_AMOUNT}, 0) AS amount FROM {_EV} e
            WHERE e.contact_id = k.contact_id AND e.workspace_id = k.workspace_id AND {_ORDER_EVENTS}
              AND e.name = '{ORDER_COMPLETED}' AND {_ORDER_KEY} = k.order_key
            ORDER BY e.occurred_at, e.id LIMIT 1
        ) first
        CROSS JOIN LATERAL (
            SELECT bool_or({_AMOUNT} IS NULL) AS full_refund, sum({_AMOUNT}) AS refund_amount FROM {_EV} e
            WHERE e.contact_id = k.contact_id AND e.workspace_id = k.workspace_id AND {_ORDER_EVENTS}
              AND e.name = '{ORDER_REFUNDED}' AND {_ORDER_ID} = k.order_key
        ) refunds
    ) o
    JOIN z ON z.workspace_id = o.workspace_id
    {keep}
    LEFT JOIN LATERAL (
        SELECT t.* FROM ({_CLICK} UNION ALL {_OPEN}) t ORDER BY t.touch = 'open' LIMIT 1
    ) t ON NOT {already}
    LEFT JOIN LATERAL (
        SELECT t.message_id, t.touch, t.touched_at, {rollups.DIMENSIONS_SQL}
        FROM {_M} m {rollups.ENROLLMENT_JOIN} WHERE m.id = t.message_id
    ) d ON true
    """


# The order keys an id range of the event store names (alias e): each order and each refund.
_NEW_KEYS = f"""
    SELECT e.workspace_id, e.contact_id,
           CASE WHEN e.name = '{ORDER_COMPLETED}' THEN {_ORDER_KEY} ELSE left({_ORDER_ID}, 255) END AS order_key
    FROM {_EV} e
    WHERE (e.id > %(lo)s AND e.id <= %(hi)s OR EXISTS (SELECT 1 FROM {_GAP} g WHERE e.id BETWEEN g.lo AND g.hi))
      AND {_ORDER_EVENTS} AND e.contact_id IS NOT NULL
      AND (e.name = '{ORDER_COMPLETED}' OR {_ORDER_ID} IS NOT NULL)
"""

_RETURN_KEYS = """
    SELECT workspace_id, day, kind, object_id, step_key, template_id, order_day FROM upserted
    UNION SELECT workspace_id, day, kind, object_id, step_key, template_id, order_day FROM old
"""


def _upsert_sql(keys: str, *, pinned: bool) -> str:
    """Write the Attribution rows of the orders `keys` names; returns the rollup keys and order
    days they were on before and are on now."""
    refresh_touch = "" if pinned else ", ".join(
        ["", *(f"{c} = EXCLUDED.{c}" for c in ("message_id", "touch", "touched_at", *_DIMS.split(", ")))]
    )  # fmt: skip
    return f"""
    WITH {SETTINGS_CTE}, keys AS ({keys}),
    old AS (
        SELECT a.workspace_id, a.{_DIMS.replace(", ", ", a.")}, a.order_day FROM {_A} a
        JOIN keys k ON k.workspace_id = a.workspace_id AND k.contact_id = a.contact_id AND k.order_key = a.order_key
    ), upserted AS (
        INSERT INTO {_A} AS a ({_COLUMNS})
        {attributed_orders_sql("keys", pinned=pinned)}
        ON CONFLICT (workspace_id, contact_id, order_key) DO UPDATE SET
            order_event_id = EXCLUDED.order_event_id, ordered_at = EXCLUDED.ordered_at,
            order_day = EXCLUDED.order_day, amount = EXCLUDED.amount, refunded = EXCLUDED.refunded,
            counts = EXCLUDED.counts {refresh_touch}
        RETURNING a.workspace_id, a.{_DIMS.replace(", ", ", a.")}, a.order_day
    )
    {_RETURN_KEYS}
    """


# The money of rollup rows, summed again from their Attribution rows; and the day's orders.
_SYNC_MONEY = f"""
WITH k AS (
    SELECT DISTINCT * FROM unnest(%(ws)s::bigint[], %(day)s::date[], %(kind)s::text[], %(obj)s::bigint[],
                                  %(step)s::text[], %(tpl)s::bigint[]) AS k(workspace_id, {_DIMS})
), money AS (
    SELECT k.*, coalesce(s.conversions, 0) AS conversions, coalesce(s.revenue, 0) AS revenue FROM k
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE a.counts) AS conversions, sum(a.amount - a.refunded) AS revenue
        FROM {_A} a
        WHERE a.workspace_id = k.workspace_id AND a.day = k.day AND a.kind = k.kind AND a.object_id = k.object_id
          AND a.step_key = k.step_key AND a.template_id = k.template_id AND a.message_id IS NOT NULL
    ) s
)
INSERT INTO {_ROLLUP} AS r (workspace_id, {_DIMS}, {", ".join(COUNTER_NAMES)}, conversions, revenue,
                            updated_at)
SELECT workspace_id, {_DIMS}, {", ".join("0" for _ in COUNTER_NAMES)}, conversions, revenue, now()
FROM money
ON CONFLICT (workspace_id, {_DIMS}) DO UPDATE
SET conversions = EXCLUDED.conversions, revenue = EXCLUDED.revenue, updated_at = EXCLUDED.updated_at
WHERE (r.conversions, r.revenue) IS DISTINCT FROM (EXCLUDED.conversions, EXCLUDED.revenue)
"""
_SYNC_ORDERS = f"""
WITH k AS (SELECT DISTINCT * FROM unnest(%(ws)s::bigint[], %(day)s::date[]) AS k(workspace_id, day))
INSERT INTO {_ORDERS} AS o (workspace_id, day, orders, revenue)
SELECT k.workspace_id, k.day, coalesce(s.orders, 0), coalesce(s.revenue, 0) FROM k
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE a.counts) AS orders, sum(a.amount - a.refunded) AS revenue
    FROM {_A} a WHERE a.workspace_id = k.workspace_id AND a.order_day = k.day
) s
ON CONFLICT (workspace_id, day) DO UPDATE SET orders = EXCLUDED.orders, revenue = EXCLUDED.revenue
WHERE (o.orders, o.revenue) IS DISTINCT FROM (EXCLUDED.orders, EXCLUDED.revenue)
"""

_GAPS = f"""
INSERT INTO {_GAP} (lo, hi, seen_at)
SELECT prev + 1, id - 1, now() FROM (
    SELECT id, lag(id, 1, %(lo)s::bigint) OVER (ORDER BY id) AS prev FROM {_EV} WHERE id > %(lo)s AND id <= %(hi)s
) s WHERE id > prev + 1
"""


def settings_of(workspace: Workspace) -> AttributionSettings:
    """The workspace's windows (the defaults when it never set them; not saved)."""
    return AttributionSettings.objects.filter(workspace=workspace).first() or AttributionSettings(workspace=workspace)


def settings_params(workspace_ids: Iterable[int] | None = None) -> dict[str, Any]:
    """Each workspace's zone and windows, as arrays for SETTINGS_CTE."""
    params = rollups.zones_params(workspace_ids)
    saved = {
        pk: (click, opened)
        for pk, click, opened in AttributionSettings.objects.filter(workspace_id__in=params["ws"]).values_list(
            "workspace_id", "click_days", "open_days"
        )
    }
    defaults = (AttributionSettings.DEFAULT_CLICK_DAYS, AttributionSettings.DEFAULT_OPEN_DAYS)
    params["click_days"] = [saved.get(pk, defaults)[0] for pk in params["ws"]]
    params["open_days"] = [saved.get(pk, defaults)[1] for pk in params["ws"]]
    return params


def _sync(cursor: CursorWrapper, keys: Sequence[Sequence[Any]]) -> None:
    """Sum again the money of these rollup rows and order days ((workspace, day, kind, object
    id, step key, template id, order day) each; a None day: no email)."""
    money = [k for k in keys if k[1] is not None]
    if money:
        columns = list(zip(*money, strict=True))
        cursor.execute(
            _SYNC_MONEY,
            {"ws": list(columns[0]), "day": list(columns[1]), "kind": list(columns[2]), "obj": list(columns[3]),
             "step": list(columns[4]), "tpl": list(columns[5])},
        )  # fmt: skip
    days = [(k[0], k[6]) for k in keys if k[6] is not None]
    if days:
        cursor.execute(_SYNC_ORDERS, {"ws": [d[0] for d in days], "day": [d[1] for d in days]})


# --- the incremental refresh ---------------------------------------------------------------


@dataclass(frozen=True)
class AttributionRefreshResult:
    batches: int
    event_watermark: int
    locked_out: bool = False


def _refresh_batch() -> tuple[bool, int] | None:
    with transaction.atomic():
        if not rollups._lock(wait=False):
            return None
        state, _ = AttributionState.objects.select_for_update().get_or_create(pk=1)
        lo = state.event_id
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT max(id) FROM (SELECT id FROM {_EV} WHERE id > %s ORDER BY id LIMIT %s) s", [lo, EVENT_BATCH]
            )
            found = cursor.fetchone()[0]  # type: ignore[index]
            hi = int(found) if found is not None else lo
            cursor.execute(f"DELETE FROM {_GAP} WHERE seen_at < %s", [timezone.now() - GAP_LIFETIME])
            if hi > lo:
                cursor.execute(_GAPS, {"lo": lo, "hi": hi})
            cursor.execute(_upsert_sql(_NEW_KEYS, pinned=True), {"lo": lo, "hi": hi, **settings_params()})
            _sync(cursor, cursor.fetchall())
        state.event_id = hi
        state.refreshed_at = timezone.now()
        state.save(update_fields=["event_id", "refreshed_at"])
        return (hi - lo) >= EVENT_BATCH, hi


def attribution_refresh(*, budget_seconds: float = REFRESH_BUDGET_SECONDS) -> AttributionRefreshResult:
    """Attribute the orders (and apply the refunds) stored since the last refresh, batch after
    batch until caught up or the budget is spent."""
    started = time.monotonic()
    batches, watermark = 0, 0
    while True:
        outcome = _refresh_batch()
        if outcome is None:
            return AttributionRefreshResult(batches, watermark, locked_out=True)
        batches += 1
        more, watermark = outcome
        if not more or time.monotonic() - started > budget_seconds:
            return AttributionRefreshResult(batches, watermark)


# --- the rebuild ---------------------------------------------------------------------------

PERIOD_KEYS_SQL = f"""
    SELECT e.workspace_id, e.contact_id, {_ORDER_KEY} AS order_key FROM {_EV} e
    WHERE e.workspace_id = %(workspace)s AND {_ORDER_EVENTS} AND e.name = '{ORDER_COMPLETED}'
      AND e.contact_id IS NOT NULL
      AND (%(start)s::timestamptz IS NULL OR e.occurred_at >= %(start)s::timestamptz)
      AND (%(end)s::timestamptz IS NULL OR e.occurred_at < %(end)s::timestamptz)
"""
_PERIOD = "workspace_id = %(workspace)s AND (%(start)s::timestamptz IS NULL OR ordered_at >= %(start)s::timestamptz) " \
          "AND (%(end)s::timestamptz IS NULL OR ordered_at < %(end)s::timestamptz)"  # fmt: skip


def attribution_rebuild(
    *, workspace: Workspace, since: dt.date | None = None, until: dt.date | None = None, orders: bool = True
) -> None:
    """Within a rollup rebuild (its transaction and lock): attribute again the orders placed
    since…until (days in the workspace's zone; open ends: all) with the windows as they are,
    and sum again the money of the rollup rows of those days and of every row an order moved
    from or to. `orders=False`: only the money (the rows' attributions are kept)."""
    zone = workspace.zone
    params: dict[str, Any] = {
        "workspace": workspace.pk,
        "start": None if since is None else dt.datetime.combine(since, dt.time(), tzinfo=zone),
        "end": None if until is None else dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=zone),
        "since": since,
        "until": until,
        **settings_params([workspace.pk]),
    }
    keys: list[Sequence[Any]] = []
    with connection.cursor() as cursor:
        if orders:
            # Orders that are gone (their events erased) go; the rest are written again.
            cursor.execute(f"DELETE FROM {_A} a WHERE {_PERIOD} RETURNING workspace_id, {_DIMS}, order_day", params)
            keys += cursor.fetchall()
            cursor.execute(_upsert_sql(PERIOD_KEYS_SQL, pinned=False), params)
            keys += cursor.fetchall()
        # The rollup rows of the days rebuilt lost their money; their orders may lie anywhere.
        cursor.execute(
            f"SELECT DISTINCT workspace_id, {_DIMS}, NULL::date FROM {_A} WHERE workspace_id = %(workspace)s "
            "AND message_id IS NOT NULL AND (%(since)s::date IS NULL OR day >= %(since)s::date) "
            "AND (%(until)s::date IS NULL OR day <= %(until)s::date)",
            params,
        )
        keys += cursor.fetchall()
        _sync(cursor, keys)


def register() -> None:
    """Every rollup rebuild rebuilds the attribution of its period (analytics.rollups)."""
    if _after_rebuild not in rollups.AFTER_REBUILD:
        rollups.AFTER_REBUILD.append(_after_rebuild)


def _after_rebuild(workspace: Workspace, since: dt.date | None, until: dt.date | None) -> None:
    attribution_rebuild(workspace=workspace, since=since, until=until)


def attribution_settings_save(*, workspace: Workspace, click_days: int, open_days: int) -> AttributionSettings:
    """Set the workspace's windows; its orders are attributed again with them by a task after
    commit (every order: the windows are the workspace's rule, not a date's)."""
    from analytics import tasks

    settings, _ = AttributionSettings.objects.update_or_create(
        workspace=workspace,
        defaults={"click_days": click_days, "open_days": open_days, "updated_at": timezone.now()},
    )
    enqueue_after_commit(tasks.reattribute, workspace.pk)
    return settings


@transaction.atomic
def attribution_rebuild_all(*, workspace: Workspace) -> None:
    """Attribute every order of the workspace again (after its windows changed)."""
    rollups._lock(wait=True)
    attribution_rebuild(workspace=workspace)
