"""The contacts page's first page of a search or a tag filter, as it was and as it is, on a big
workspace (one kept by `bench/segment.py --keep`), interleaved in one run so that the machine's
load hits both alike.

  * before: the query the page ran until now — `upper(col) LIKE '%…%'` over email and names, or
    `tags @> '{…}'`, ORDER BY id DESC LIMIT 51, left to the planner;
  * after: audiences.filters.contacts_page (the trigram index, the probe of the newest contacts,
    then the filter's own index).

Both must return the same page. Prepare the workspace's tags first with --prepare (a common
tag on the oldest ninth, like a promotion tagged months ago; a rare one on 1 in 6,000; a few
Cyrillic names):

    .venv/bin/python bench/segment.py --contacts 300000 --events 300000 --keep     # prints the id
    .venv/bin/python bench/contacts_page.py --workspace 1 --prepare
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402

from audiences.filters import ContactFilter, contacts_page  # noqa: E402
from audiences.models import Contact  # noqa: E402
from esp.models import Workspace  # noqa: E402

CASES = [
    {"q": "c12"},
    {"q": "c299999"},
    {"q": "петро"},
    {"q": "first12"},
    {"q": "c29999@"},
    {"tag": "promo"},
    {"tag": "vip"},
]


def prepare(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), count(*) FROM audiences_contact WHERE workspace_id = %s", [workspace.pk])
        first, total = cursor.fetchone()
        cursor.execute(
            "UPDATE audiences_contact SET tags = '{promo}' WHERE workspace_id = %s AND id < %s",
            [workspace.pk, first + total // 9],
        )
        cursor.execute(
            "UPDATE audiences_contact SET tags = tags || '{vip}'::varchar[] WHERE workspace_id = %s AND id %% 6000 = 7",
            [workspace.pk],
        )
        cursor.execute(
            "UPDATE audiences_contact SET first_name = 'Анна', last_name = 'Петрова' "
            "WHERE workspace_id = %s AND id %% 50000 = 11",
            [workspace.pk],
        )
        cursor.execute("VACUUM ANALYZE audiences_contact")


def before(workspace: Workspace, case: dict[str, str]) -> list[int]:
    contacts = Contact.objects.in_workspace(workspace)
    q = case.get("q", "")
    if q and "@" in q:
        contacts = contacts.filter(email__lower__startswith=q.lower())
    elif q:
        contacts = contacts.filter(Q(email__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q))
    if case.get("tag"):
        contacts = contacts.filter(tags__contains=[case["tag"]])
    return [contact.pk for contact in contacts.order_by("-id")[:50]]  # whole rows, as the page reads them


def after(workspace: Workspace, case: dict[str, str]) -> list[int]:
    page, _next = contacts_page(workspace=workspace, contact_filter=ContactFilter.from_data(case), before=None, size=50)
    return [contact.pk for contact in page]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=int, required=True)
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workspace = Workspace.objects.get(pk=args.workspace)
    if args.prepare:
        prepare(workspace)
    total = Contact.objects.in_workspace(workspace).count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef(to_regclass('contact_search')::oid)")
        index = cursor.fetchone()[0] or "none"
    print(f"{total:,} contacts; search index: {'pg_trgm' if 'gin_trgm_ops' in index else 'esp_search_keys'}")
    print(f"{'filter':<22} {'rows':>5} {'before ms':>10} {'after ms':>9} {'after/before':>13}")
    for case in CASES:
        runs: dict[str, Callable[[], list[int]]] = {
            "before": lambda case=case: before(workspace, case),
            "after": lambda case=case: after(workspace, case),
        }
        results = {name: run() for name, run in runs.items()}  # warm the cache
        assert results["before"] == results["after"], case
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.repeat):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        b, a = (statistics.median(times[name]) * 1000 for name in ("before", "after"))
        label = " ".join(f"{k}={v}" for k, v in case.items())
        print(f"{label:<22} {len(results['after']):>5} {b:>10.1f} {a:>9.1f} {a / b:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
