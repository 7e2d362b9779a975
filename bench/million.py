"""Benchmark of a marketer's pages and actions at a million contacts against the same at ten
thousand, in one run: each figure printed next to its baseline, with the ratio.

Two workspaces: the big one kept by `bench/segment.py --keep` (1,000,000 contacts, 10,000,000
events; --workspace ID), and a small one generated here by the same generator (--small-contacts,
--small-events; kept with --keep-small, reused with --small-workspace ID). Each is prepared
first, as an operator would after a bulk load (timed, not a target): tag one contact in nine
"promo", `facts_rebuild` (facts, RFM scores, lifecycle stages, the pages' stored figures) and
`recent_events_rebuild`. Then, each --repeat times after a warm-up, median reported:

  pages (server time through Django's test client: middleware, views, SQL, templates):
    contacts page, search by substring (no "@"), tag filter, attribute filter, segment live count + preview
    (the builder's POST), lifecycle page, RFM page; the bulk "tag all matching" request
    against an empty request (the same POST without an action);
  actions:
    the 3-condition segment of bench/segment.py: count + preview (segment_preview, one query)
    against bench/segment.py's hand-written SQL count over raw events, member sets asserted
    identical; purchase_facts_refresh of 1,000 and of 10,000 customers; rfm_score (a nightly
    re-run) against one NTILE pass over the same rows.

    .venv/bin/python bench/segment.py --keep            # prints: kept: --workspace N
    .venv/bin/python bench/million.py --workspace N

Targets: pages and filters ≤ 2× from 10k to 1M; count + preview ≤ 0.5× hand SQL; facts refresh
10k ≤ 12× 1k; rfm_score ≤ 2× one NTILE pass. Results are in bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from segment import HAND_SQL, RULES, generate  # noqa: E402

from audiences.facts import (  # noqa: E402
    customer_scores_refresh,
    purchase_facts_rebuild,
    purchase_facts_refresh,
    rfm_ntile_baseline,
    rfm_score,
)
from audiences.models import CustomerFacts  # noqa: E402
from audiences.recent_events import recent_events_built, recent_events_rebuild  # noqa: E402
from audiences.segments.compiler import segment_queryset  # noqa: E402
from audiences.segments.selectors import segment_preview  # noqa: E402
from esp.middleware import SESSION_WORKSPACE_KEY  # noqa: E402
from esp.models import Membership, Role, User, Workspace  # noqa: E402

BENCH_USER = "bench-million@bench.example"
logging.getLogger("esp.request").setLevel(logging.WARNING)  # one log line per request otherwise
warnings.filterwarnings("ignore", message="No directory at")  # STATIC_ROOT: not collected here
# Pages render their static URLs without the manifest `collectstatic` writes (as the tests do);
# the lookup costs the same.
override_settings(
    STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
).enable()


def log(message: str = "") -> None:
    print(message, flush=True)


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm-up: caches, the plan, the connection
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def now_of(workspace: Workspace) -> dt.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(occurred_at) FROM audiences_event WHERE workspace_id = %s", [workspace.pk])
        return cursor.fetchone()[0]


def prepare(workspace: Workspace) -> dict[str, float]:
    """What an operator runs after a bulk load; timed for the record."""
    spent: dict[str, float] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM audiences_contact WHERE workspace_id = %s AND tags @> '{promo}')",
            [workspace.pk],
        )
        if not cursor.fetchone()[0]:
            start = time.perf_counter()
            cursor.execute(
                "UPDATE audiences_contact SET tags = '{promo}' WHERE workspace_id = %s AND id %% 9 = 0", [workspace.pk]
            )
            cursor.execute("VACUUM (ANALYZE) audiences_contact")
            spent["tag one in nine 'promo'"] = time.perf_counter() - start
    if not CustomerFacts.objects.filter(workspace=workspace).exists():
        start = time.perf_counter()
        purchase_facts_rebuild(workspace_id=workspace.pk)
        spent["facts_rebuild: facts"] = time.perf_counter() - start
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) audiences_customerfacts")
        start = time.perf_counter()
        rfm_score(workspace_id=workspace.pk)
        spent["rfm_score, first run (every row written)"] = time.perf_counter() - start
    start = time.perf_counter()
    customer_scores_refresh(workspace_id=workspace.pk)
    spent["scoring job (scores, stages, stored figures)"] = time.perf_counter() - start
    if not recent_events_built(workspace_id=workspace.pk):
        start = time.perf_counter()
        recent_events_rebuild(workspace_id=workspace.pk)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) audiences_recentevent")
        spent["recent_events_rebuild"] = time.perf_counter() - start
    return spent


def client_for(workspace: Workspace) -> Client:
    user = User.objects.filter(email=BENCH_USER).first() or User.objects.create_user(
        email=BENCH_USER, password=uuid.uuid4().hex
    )
    Membership.objects.get_or_create(user=user, workspace=workspace, defaults={"role": Role.OWNER})
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = workspace.pk
    session.save()
    return client


def ok(response: Any) -> Any:
    assert response.status_code in (200, 302), response.status_code
    return response


def measure(workspace: Workspace, repeat: int) -> dict[str, float]:
    import json

    client = client_for(workspace)
    now = now_of(workspace)
    figures: dict[str, float] = {}

    def page(path: str) -> Callable[[], object]:
        return lambda: ok(client.get(path))

    figures["contacts page"] = median_ms(page("/audience/contacts/"), repeat)
    figures["search 'c12' (substring)"] = median_ms(page("/audience/contacts/?q=c12"), repeat)
    figures["search 'c99999' (substring)"] = median_ms(page("/audience/contacts/?q=c99999"), repeat)
    figures["tag filter 'promo'"] = median_ms(page("/audience/contacts/?tag=promo"), repeat)
    figures["attribute filter country = DE"] = median_ms(
        page("/audience/contacts/?attr=country&attr_op=eq&attr_value=DE"), repeat
    )
    preview_post = {"rules": json.dumps(RULES), "name": "x"}
    figures["segment live count + preview (page)"] = median_ms(
        lambda: ok(client.post("/audience/segments/preview/", preview_post)), repeat
    )
    figures["lifecycle page"] = median_ms(page("/audience/lifecycle/"), repeat)
    figures["RFM page"] = median_ms(page("/audience/rfm/"), repeat)

    def bulk(action: str) -> float:
        """One POST on everything tagged "promo", in seconds; the tag it adds is taken off
        again after the clock stops, so every run tags them all."""
        data = {"target": "all", "tag": "promo", "action": action, "value": "bench-bulk", "query": "tag=promo"}
        start = time.perf_counter()
        ok(client.post("/audience/contacts/", data))
        seconds = time.perf_counter() - start
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audiences_contact SET tags = array_remove(tags, 'bench-bulk') "
                "WHERE workspace_id = %s AND tags @> '{bench-bulk}'",
                [workspace.pk],
            )
        return seconds

    for name, action, runs in (
        ("bulk 'tag all matching' request", "tag", max(1, repeat // 2)),
        ("empty request (same POST, no action)", "", repeat),
    ):
        bulk(action)
        figures[name] = statistics.median(bulk(action) for _ in range(runs)) * 1000

    # The 3-condition segment: count + preview in one query vs the hand-written count.
    params: dict[str, Any] = {
        "ws": workspace.pk,
        "since30": now - dt.timedelta(days=30),
        "since14": now - dt.timedelta(days=14),
    }

    def hand_count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL.format(select="count(*)"), params)
            return int(cursor.fetchone()[0])

    preview = segment_preview(workspace=workspace, rules=RULES, now=now)
    members = set(segment_queryset(workspace=workspace, rules=RULES, now=now).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(HAND_SQL.format(select="c.id"), params)
        hand_members = {row[0] for row in cursor.fetchall()}
    assert members == hand_members, f"member sets differ: {len(members ^ hand_members)} contacts"
    assert preview.count == len(members) == hand_count()
    assert [c.pk for c in preview.contacts] == sorted(members, reverse=True)[: len(preview.contacts)]
    figures["members (identical sets)"] = len(members)
    figures["3-condition count + preview (engine)"] = median_ms(
        lambda: segment_preview(workspace=workspace, rules=RULES, now=now), repeat
    )
    figures["3-condition count, hand SQL over raw events"] = median_ms(hand_count, repeat)

    # Customers spread evenly over the workspace (the generator's first contacts are by far the
    # most active), and each smaller batch spread the same way: only the size changes.
    buyers = CustomerFacts.objects.filter(workspace=workspace, orders_count__gt=0).order_by("pk")
    customers = list(buyers.values_list("pk", flat=True))
    for size in (100, 1_000, 10_000):
        if len(customers) >= size:
            batch: list[int] = customers[:: len(customers) // size][:size]

            def refresh(batch: list[int] = batch) -> None:
                purchase_facts_refresh(workspace_id=workspace.pk, contact_ids=batch)

            figures[f"purchase_facts_refresh of {size:,}"] = median_ms(refresh, max(1, repeat // 2))
    figures["rfm_score (nightly re-run)"] = median_ms(lambda: rfm_score(workspace_id=workspace.pk), repeat)
    figures["one NTILE pass over the same rows"] = median_ms(
        lambda: rfm_ntile_baseline(workspace_id=workspace.pk), repeat
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=int, required=True, help="the big workspace (bench/segment.py --keep)")
    parser.add_argument("--small-workspace", type=int, help="reuse a small workspace kept by --keep-small")
    parser.add_argument("--small-contacts", type=int, default=10_000)
    parser.add_argument("--small-events", type=int, default=100_000)
    parser.add_argument("--keep-small", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    big = Workspace.objects.get(pk=args.workspace)
    made_small = False
    if args.small_workspace:
        small = Workspace.objects.get(pk=args.small_workspace)
    else:
        small = Workspace.objects.create(name="Million benchmark (small)", slug=f"bench-small-{uuid.uuid4().hex[:8]}")
        made_small = True
        log(f"generating the small workspace {small.pk}:")
        generate(small, args.small_contacts, args.small_events, now_of(big), shuffled=False)
    try:
        results: dict[str, dict[str, float]] = {}
        for label, workspace in (("small", small), ("big", big)):
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM audiences_contact WHERE workspace_id = %s", [workspace.pk])
                contacts = cursor.fetchone()[0]
            log(f"\n{label}: workspace {workspace.pk}, {contacts:,} contacts; preparing:")
            for step, seconds in prepare(workspace).items():
                log(f"  {step}: {seconds:.1f} s")
            results[label] = measure(workspace, args.repeat)
            results[label]["contacts"] = contacts
        small_n, big_n = int(results["small"]["contacts"]), int(results["big"]["contacts"])
        log(f"\n{'':52} {small_n:>10,} {big_n:>12,}   ratio")
        for name, value in results["big"].items():
            if name == "contacts":
                continue
            base = results["small"].get(name)
            unit = "" if name.startswith("members") else " ms"
            ratio = f"{value / base:6.2f}" if base else "     —"
            shown = f"{base:>8,.0f}{unit:3}" if base is not None else f"{'—':>11}"
            log(f"{name:52} {shown} {value:>10,.0f}{unit:3} {ratio}")
        log("\nwithin the big workspace (the targets' own yardsticks):")
        b = results["big"]
        for name, over, yardstick, target in (
            ("count + preview / hand SQL", "3-condition count + preview (engine)",
             "3-condition count, hand SQL over raw events", 0.5),
            ("facts refresh 10k / 1k", "purchase_facts_refresh of 10,000", "purchase_facts_refresh of 1,000", 12),
            ("rfm_score / one NTILE pass", "rfm_score (nightly re-run)", "one NTILE pass over the same rows", 2),
            ("bulk request / empty request", "bulk 'tag all matching' request", "empty request (same POST, no action)",
             2),
        ):  # fmt: skip
            if over in b and yardstick in b:
                quotient = b[over] / b[yardstick]
                verdict = "met" if quotient <= target else "NOT met"
                log(f"  {name:34} {quotient:6.2f}   (target ≤ {target}: {verdict})")
    finally:
        if made_small and not args.keep_small:
            with connection.cursor() as cursor:
                for table in (
                    "audiences_recentevent",
                    "audiences_recenteventsbuilt",
                    "audiences_insightfigures",
                    "audiences_customerfacts",
                    "audiences_segmentmembership",
                    "audiences_segment",
                    "audiences_event",
                    "audiences_contact",
                    "esp_membership",
                ):
                    cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [small.pk])
                cursor.execute("DELETE FROM esp_workspace WHERE id = %s", [small.pk])
        elif made_small:
            log(f"\nkept: --small-workspace {small.pk}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
