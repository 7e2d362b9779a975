"""The series builder's server time for a big series, beside the series list page in the same
run (the VMs differ up to 3x from one session to the next: the ratio is the figure).

For a series of --steps steps (blocks of email, wait and a condition whose "no" branch holds
three steps of its own, nested as real flows nest) with --people enrollments walked through its
first steps (so every card has counts to read), it times, interleaved, --repeat times each:

  * list:    GET /series/                       (the baseline: a page every marketer opens)
  * builder: GET /series/<id>/builder/          (the editor's first render)
  * panel:   GET /series/<id>/builder/?step=…   (a step's side panel open)
  * insert:  POST op=insert (htmx) then POST op=undo — one edit's round trip, and its undo,
             timed apart, so the series keeps its size

and prints the medians and the ratios to the list page. Runs on a scratch workspace it deletes.

    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/builder_page.py --steps 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from audiences.models import Contact  # noqa: E402
from automations.models import Enrollment, EnrollmentState, Series, Trace  # noqa: E402
from automations.services import SeriesInput, series_create, series_publish  # noqa: E402
from campaigns.models import EmailTemplate  # noqa: E402
from esp.models import Membership, Role, User, Workspace  # noqa: E402


def big_series_steps(steps: int, templates: list[int]) -> dict[str, Any]:
    """Blocks of six steps: email → wait → condition; "no" gets email → wait → email, "yes"
    goes on to the next block."""
    listed: list[dict[str, Any]] = []
    blocks = max(1, steps // 6)
    for b in range(blocks):
        nxt = f"s{b + 1}" if b + 1 < blocks else None
        t = templates[b % len(templates)]
        listed += [
            {"key": f"s{b}", "type": "send", "template": t, "next": f"w{b}"},
            {"key": f"w{b}", "type": "wait", "amount": 1, "unit": "days", "next": f"c{b}"},
            {"key": f"c{b}", "type": "condition", "events_since_entry": [{"event": "Order Completed"}],
             "yes": nxt, "no": f"n{b}a"},
            {"key": f"n{b}a", "type": "send", "template": t, "next": f"n{b}b"},
            {"key": f"n{b}b", "type": "wait", "amount": 2, "unit": "days", "next": f"n{b}c"},
            {"key": f"n{b}c", "type": "send", "template": t, "next": None},
        ]  # fmt: skip
    return {"start": "s0", "steps": listed}


def seed(steps: int, people: int) -> tuple[Workspace, User, Series]:
    workspace = Workspace.objects.create(name="Bench builder", slug=f"bench-builder-{int(time.time())}")
    user = User.objects.create_user(email=f"bench{int(time.time())}@bench.test", password="x")  # type: ignore[attr-defined]
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    templates = [
        EmailTemplate.objects.create(workspace=workspace, name=f"Email {i}", subject="Hi", mjml="<mjml/>").pk
        for i in range(5)
    ]
    # The last block's condition must lead somewhere on "yes" for the graph check: end it with
    # an email there.
    graph = big_series_steps(steps, templates)
    last_condition = [s for s in graph["steps"] if s["type"] == "condition"][-1]
    graph["steps"].append({"key": "last", "type": "send", "template": templates[0], "next": None})
    last_condition["yes"] = "last"
    series = series_create(
        workspace=workspace,
        data=SeriesInput(name="Big series", trigger={"type": "event", "event": "Checkout Started"}, steps=graph),
    )
    series_publish(workspace=workspace, series_id=series.pk)
    series.refresh_from_db()
    if people:
        # People standing on the first wait, with the trace of the email before it: every
        # count the cards read has rows behind it.
        contacts = Contact.objects.bulk_create(
            [Contact(workspace=workspace, email=f"p{i}@bench.test") for i in range(people)], batch_size=5000
        )
        now = timezone.now()
        enrollments = Enrollment.objects.bulk_create(
            [
                Enrollment(workspace=workspace, series=series, version=series.live_version, contact=c,
                           state=EnrollmentState.WAITING, step_key="w0", step_started_at=now, entered_at=now,
                           due_at=now + dt.timedelta(days=1))
                for c in contacts
            ],
            batch_size=5000,
        )  # fmt: skip
        Trace.objects.bulk_create(
            [Trace(workspace=workspace, enrollment=e, series=series, step_key="s0", ran_at=now, outcome="sent")
             for e in enrollments],
            batch_size=5000,
        )  # fmt: skip
    return workspace, user, series


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    response = action()
    elapsed = time.perf_counter() - start
    assert response.status_code in (200, 302), response.status_code
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    workspace, user, series = seed(args.steps, args.people)
    try:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        url = f"/series/{series.pk}/builder/"
        htmx = {"HTTP_HX_REQUEST": "true"}
        n_steps = len(series.live_version.steps["steps"])  # type: ignore[union-attr]
        figures: dict[str, list[float]] = {"list": [], "builder": [], "panel": [], "insert": [], "undo": []}
        for _round in range(args.repeat + 2):  # two warm-up rounds, not counted
            sample = {
                "list": timed(lambda: client.get("/series/")),
                "builder": timed(lambda: client.get(url)),
                "panel": timed(lambda: client.get(url, {"step": "n4b"})),
                "insert": timed(lambda: client.post(url, {"op": "insert", "edge": "s2:next", "kind": "wait"}, **htmx)),
                "undo": timed(lambda: client.post(url, {"op": "undo"}, **htmx)),
            }
            if _round >= 2:
                for name, value in sample.items():
                    figures[name].append(value)
        medians = {name: statistics.median(values) for name, values in figures.items()}
        print(f"series of {n_steps} steps, {args.people} enrollments, {args.repeat} rounds (median server time)")
        for name, value in medians.items():
            print(f"  {name:8} {value:8.1f} ms   {value / medians['list']:5.2f} x the series list page")
    finally:
        clean_up(workspace, user)


def clean_up(workspace: Workspace, user: User) -> None:
    """Enrollments protect their versions and series: they go first."""
    Trace.objects.filter(workspace=workspace).delete()
    Enrollment.objects.filter(workspace=workspace)._raw_delete(Enrollment.objects.db)  # type: ignore[attr-defined]
    Series.objects.filter(workspace=workspace).update(live_version=None)
    Series.objects.filter(workspace=workspace).delete()
    workspace.delete()
    user.delete()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--clean"]:  # a run that was stopped left its workspace behind
        for leftover in Workspace.objects.filter(slug__startswith="bench-builder-"):
            owner = User.objects.filter(memberships__workspace=leftover).first()
            if owner is not None:
                clean_up(leftover, owner)
    else:
        main()
