"""Micro-benchmark of per-recipient rendering: the delivery benchmark's template (bench/send.py)
rendered through the render plan (campaigns.content.plan) and through Django's own nodes, in
the same run.

Builds the template as the sender does: `template_compile` with the workspace's default layout
(header, footer with the unsubscribe link and the postal address), `rendering.parts._parts` (subject,
HTML, the text part generated from the HTML), and per recipient `email_context` (made
beforehand: contacts like bench/send.py's, first names with accents, Cyrillic and empty, cities
some empty, the event's three products) and `render_parts` (freeze, the budget, the three
renders, the text tidying). Every recipient's email is checked identical both ways first. Then
`--rounds` rounds, each rendering `--renders` emails the old way and the new way in turn (the
order swapped every round, so a change of load on a shared machine hits both alike), timed with
`time.process_time()`; the medians are printed, for the whole email and for the HTML part alone.

The old way here is Django's nodes with the rest of today's code: the filter, freeze and text
tidying speed-ups that came with the plan help both. For the numbers before all of it, run this
file in a checkout of the commit before (`git archive <commit> | tar -x -C /tmp/before`, copy
this file there, run it from there): both ways are then the old code.

    DATABASE_URL=postgres://unused/unused CELERY_BROKER_URL=redis://unused SECRET_KEY=x \\
        .venv/bin/python bench/render.py --renders 2000 --rounds 7

No database is used. `--profile FILE` writes a cProfile of the plan path (whole emails).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

from bench_email import MJML, PRODUCTS, SUBJECT  # noqa: E402  (bench/ is on sys.path)

from campaigns.content.rendering import email_context, render_parts, template_compile  # noqa: E402
from campaigns.content.rendering import parts as rendering_parts  # noqa: E402
from campaigns.content.sandbox import freeze, render_budget, render_compiled  # noqa: E402
from campaigns.content.selectors import DEFAULT_LAYOUT  # noqa: E402
from campaigns.models import MessageClass  # noqa: E402
from esp.models import Workspace  # noqa: E402

FIRST_NAMES = ["Anna", "Ben", "Chloé", "Дмитрий", ""]
CITIES = ["Berlin", "Paris", "", "Москва"]


def contact(n: int) -> dict[str, Any]:
    """A contact as `contact_as_dict` gives it for bench/send.py's seeded rows."""
    created = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC) + dt.timedelta(days=n % 300)
    return {
        "id": n, "email": f"w{n}@bench.example", "external_id": f"C{100000 + n}",
        "first_name": FIRST_NAMES[n % 5], "last_name": "Smith", "gender": "", "phone": "",
        "city": CITIES[n % 4], "country": "DE", "time_zone": "", "locale": "",
        "full_name": f"{FIRST_NAMES[n % 5]} Smith".strip(), "birth_date": None,
        "created_at": created.isoformat(), "tags": [], "facts": {},
    }  # fmt: skip


def without_plan(parts: Any) -> Any:
    """The same compiled parts, rendered through Django's nodes (the path before the plan)."""
    fields = {}
    for field in dataclasses.fields(parts):
        value = getattr(parts, field.name)
        if hasattr(value, "plan"):
            value = dataclasses.replace(value, plan=None)
        fields[field.name] = value
    return type(parts)(**fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", default="")
    options = parser.parse_args()

    workspace = Workspace(name="Bench shop", postal_address="1 Market Street\nSpringfield 12345")
    html = template_compile(
        subject=SUBJECT, preheader="", mjml=MJML, text_body="", use_layout=True,
        message_class=MessageClass.MARKETING, layout=DEFAULT_LAYOUT,
    )  # fmt: skip
    new = rendering_parts._parts(subject=SUBJECT, preheader="", html=html, text_body="")
    old = without_plan(new)
    base = "https://esp.example"
    contexts = [
        email_context(
            workspace=workspace,
            contact=contact(n),
            event={"products": PRODUCTS},
            urls={
                f"{name}_url": f"{base}/e/{name[0]}/t{n}" for name in ("unsubscribe", "preferences", "view_in_browser")
            },
        )
        for n in range(20)
    ]
    for context in contexts:
        assert render_parts(old, context, mjml=MJML) == render_parts(new, context, mjml=MJML)
    sample = render_parts(new, contexts[0], mjml=MJML)
    print(f"template: {len(html):,} chars of compiled HTML; one email: {len(sample.html):,} chars of HTML, "
          f"{len(sample.text):,} of text")  # fmt: skip

    frozen = [{**freeze(context), "subject": sample.subject, "preheader": ""} for context in contexts]

    def emails(parts: Any) -> float:
        """µs per email: render_parts, as the sender calls it."""
        started = time.process_time()
        for i in range(options.renders):
            render_parts(parts, contexts[i % len(contexts)], mjml=MJML)
        return (time.process_time() - started) / options.renders * 1e6

    def html_part(parts: Any) -> float:
        """µs per render of the HTML part alone (render_compiled, a budget of its own)."""
        started = time.process_time()
        for i in range(options.renders):
            with render_budget():
                render_compiled(parts.html, frozen[i % len(frozen)])
        return (time.process_time() - started) / options.renders * 1e6

    for label, measure in (("whole email", emails), ("HTML part", html_part)):
        measure(old), measure(new)  # warm up (the remembered filters, the caches)
        olds: list[float] = []
        news: list[float] = []
        for number in range(options.rounds):
            # Both in turn, the order swapped every round.
            for parts, results in ((old, olds), (new, news)) if number % 2 == 0 else ((new, news), (old, olds)):
                results.append(measure(parts))
            print(f"{label}, round {number + 1}: Django nodes {olds[-1]:7.1f} µs, plan {news[-1]:7.1f} µs")
        old_median, new_median = statistics.median(olds), statistics.median(news)
        print(
            f"{label}: median of {options.rounds} rounds × {options.renders}: Django nodes {old_median:.1f} µs, "
            f"plan {new_median:.1f} µs; plan/Django {new_median / old_median:.2f} "
            f"({(1 - new_median / old_median) * 100:.0f} % less CPU)"
        )
    if options.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        emails(new)
        profiler.disable()
        profiler.dump_stats(options.profile)
        print(f"profile of the plan path: {options.profile}")


if __name__ == "__main__":
    main()
