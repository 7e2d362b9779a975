"""A dry run: the contact's real event history replayed against a series (its live version, or
the draft being edited), in memory. It says what would have happened, when and why — entries,
emails, waits, branches, goals — and writes nothing and sends nothing.

What the past cannot tell is said, not guessed silently: conditions on attributes, lists or
facts are judged on the contact as they are today, and opens or clicks of emails that were
never sent count as "not opened".
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from audiences.models import Contact, Event, EventType
from audiences.segments.compiler import segment_queryset
from audiences.segments.event_conditions import property_filters_q
from audiences.segments.registry import RuleContext
from automations.engine.checks import property_text
from automations.models import ReEntry, Series, SeriesVersion
from automations.steps import STEP_KINDS
from automations.steps.common import duration
from esp import clock

MAX_EVENTS = 2000
MAX_ENTRIES = 20
MAX_LINES = 500
MAX_STEPS_PER_ENTRY = 100


@dataclass(frozen=True)
class Line:
    at: dt.datetime
    entry: str  # which enrollment: "#1 (cart A)"
    step: str
    what: str
    why: str = ""
    future: bool = False  # after now: what is still to come


@dataclass
class DryRun:
    version: int
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    label: str
    key: str
    data: dict[str, Any]
    entered_at: dt.datetime
    event_id: int | None = None  # the trigger event it came from


def series_dry_run(
    *, workspace: Any, series: Series, contact: Contact, since: dt.datetime, version: SeriesVersion | None = None
) -> DryRun:
    version = version or series.live_version or series.versions.order_by("-number").first()
    if version is None or not version.steps.get("steps"):
        return DryRun(version=0, notes=[_("The series has no steps yet.")])
    now = clock.now()
    events = list(
        Event.objects.filter(workspace=workspace, contact=contact, type=EventType.TRACK, occurred_at__gte=since)
        .only("id", "name", "properties", "occurred_at")
        .order_by("occurred_at", "id")[:MAX_EVENTS]
    )
    run = DryRun(version=version.number)
    if len(events) == MAX_EVENTS:
        run.notes.append(_("Only the first %(n)d events since then were replayed.") % {"n": MAX_EVENTS})
    ctx = RuleContext(workspace, now=now)
    matching = _matching_ids(series.trigger, events, ctx) if series.trigger.get("type") == "event" else set()
    goal_ids = (
        _matching_ids({"where": series.goal.get("where", []), **series.goal}, events, ctx) if series.goal else set()
    )
    entries: list[_Entry] = []
    if series.trigger.get("type") == "event":
        key_property = series.trigger.get("key") or ""
        last: dict[str, _Entry] = {}
        ended_at: dict[str, dt.datetime | None] = {}
        for event in events:
            if event.pk not in matching:
                continue
            key = property_text(event.properties, key_property) if key_property else ""
            previous = last.get(key)
            ended = ended_at.get(key)
            if previous is not None and (ended is None or ended > event.occurred_at):
                run.lines.append(
                    Line(event.occurred_at, previous.label, "", _("not entered"), _("already inside with this key"))
                )
                continue
            if previous is not None and series.re_entry == ReEntry.ONCE:
                run.lines.append(Line(event.occurred_at, "", "", _("not entered"), _("enters once ever")))
                continue
            if (
                previous is not None
                and series.re_entry == ReEntry.PERIOD
                and event.occurred_at - previous.entered_at < dt.timedelta(days=series.re_entry_days or 0)
            ):
                run.lines.append(
                    Line(event.occurred_at, "", "", _("not entered"), _("entered less than the re-entry period ago"))
                )
                continue
            label = f"#{len(entries) + 1}" + (f" ({key_property} {key})" if key else "")
            entry = _Entry(
                label, key, event.properties if isinstance(event.properties, dict) else {}, event.occurred_at, event.pk
            )
            entries.append(entry)
            last[key] = entry
            ended_at[key] = _walk(run, series, version, contact, entry, events, goal_ids, ctx, now)
            if len(entries) >= MAX_ENTRIES or len(run.lines) >= MAX_LINES:
                run.notes.append(_("Stopped after %(n)d entries.") % {"n": len(entries)})
                break
    else:
        entry = _Entry("#1", "", {}, max(since, min((e.occurred_at for e in events), default=since)))
        run.notes.append(_("This series is not started by an event: the run assumes the contact entered at the start."))
        _walk(run, series, version, contact, entry, events, goal_ids, ctx, now)
    if not entries and series.trigger.get("type") == "event":
        run.notes.append(
            _("No %(event)s event since then: the contact would not have entered.")
            % {"event": series.trigger.get("event")}
        )
    run.notes.append(_("Conditions on attributes, lists and facts are judged on the contact as they are today."))
    return run


def _matching_ids(spec: dict[str, Any], events: list[Event], ctx: RuleContext) -> set[int]:
    names = {e.pk for e in events if e.name == spec.get("event")}
    if not names or not spec.get("where"):
        return names
    return set(
        Event.objects.filter(property_filters_q(spec["where"], ctx.clock), pk__in=names).values_list("pk", flat=True)
    )


def _goal_reached(
    series: Series, entry: _Entry, events: list[Event], goal_ids: set[int], before: dt.datetime
) -> Event | None:
    key_property = series.goal.get("key") if series.goal else None
    for event in events:
        if event.pk in goal_ids and entry.entered_at <= event.occurred_at <= before:
            if not key_property or property_text(event.properties, key_property) == entry.key:
                return event
    return None


def _walk(
    run: DryRun, series: Series, version: SeriesVersion, contact: Contact, entry: _Entry, events: list[Event],
    goal_ids: set[int], ctx: RuleContext, now: dt.datetime,
) -> dt.datetime | None:  # fmt: skip
    """Walk one simulated enrollment; when it ended (None: still inside now)."""
    at = entry.entered_at
    run.lines.append(Line(at, entry.label, "", _("entered"), "", at > now))
    key = version.steps["start"]
    steps = {s["key"]: s for s in version.steps["steps"]}
    for _hop in range(MAX_STEPS_PER_ENTRY):
        if key is None:
            run.lines.append(Line(at, entry.label, "", _("completed"), "", at > now))
            return at
        step = steps[key]
        goal = _goal_reached(series, entry, events, goal_ids, at)
        if goal is not None:
            run.lines.append(
                Line(
                    goal.occurred_at,
                    entry.label,
                    key,
                    _("converted"),
                    _("goal %(event)s") % {"event": goal.name},
                    goal.occurred_at > now,
                )
            )
            return goal.occurred_at
        kind = step["type"]
        if kind == "send":
            run.lines.append(
                Line(
                    at,
                    entry.label,
                    key,
                    _("would send email #%(id)s") % {"id": step["template"]},
                    step.get("subject", ""),
                    at > now,
                )
            )
            key = step.get("next")
        elif kind == "wait":
            end = at + duration(step)
            goal = _goal_reached(series, entry, events, goal_ids, end)
            if goal is not None:
                run.lines.append(
                    Line(
                        goal.occurred_at,
                        entry.label,
                        key,
                        _("converted"),
                        _("goal %(event)s during the wait") % {"event": goal.name},
                        goal.occurred_at > now,
                    )
                )
                return goal.occurred_at
            run.lines.append(
                Line(at, entry.label, key, _("waits until %(t)s") % {"t": f"{end:%Y-%m-%d %H:%M}"}, "", at > now)
            )
            at, key = end, step.get("next")
        elif kind == "wait_for_event":
            end = at + duration(step, prefix="timeout_")
            names = _matching_ids(step, events, ctx)
            came = next(
                (e for e in events if e.pk in names and entry.entered_at <= e.occurred_at <= end
                 and (not step.get("key_property") or property_text(e.properties, step["key_property"]) == entry.key)),
                None,
            )  # fmt: skip
            if came is not None:
                at = max(at, came.occurred_at)
                run.lines.append(
                    Line(
                        at,
                        entry.label,
                        key,
                        _("branch: yes"),
                        _("%(event)s arrived") % {"event": step["event"]},
                        at > now,
                    )
                )
                key = step.get("yes")
            else:
                at = end
                run.lines.append(
                    Line(
                        at,
                        entry.label,
                        key,
                        _("branch: no"),
                        _("no %(event)s in time") % {"event": step["event"]},
                        at > now,
                    )
                )
                key = step.get("no")
        elif kind == "condition":
            yes = _condition(step, contact, entry, events, ctx, at)
            run.lines.append(
                Line(
                    at,
                    entry.label,
                    key,
                    _("branch: yes") if yes else _("branch: no"),
                    _("judged on today's data") if step.get("rules") else "",
                    at > now,
                )
            )
            key = step.get("yes") if yes else step.get("no")
        elif kind == "split":
            draw = int.from_bytes(hashlib.blake2b(f"{entry.label}:{key}".encode(), digest_size=4).digest(), "big") % 100
            edge = 0
            chosen = None
            for index, branch in enumerate(step["branches"]):
                edge += branch["percent"]
                if draw < edge:
                    chosen = (branch.get("name") or chr(ord("A") + index), branch["next"])
                    break
            label, nxt = chosen or ("A", step["branches"][0]["next"])
            run.lines.append(Line(at, entry.label, key, _("branch: %(b)s") % {"b": label}, _("random split"), at > now))
            key = nxt
        elif kind == "exit":
            run.lines.append(Line(at, entry.label, key, _("exits"), "", at > now))
            return at
        else:
            label = STEP_KINDS[kind].describe(step) if kind in STEP_KINDS else kind
            run.lines.append(
                Line(at, entry.label, key, _("would run: %(what)s") % {"what": label or kind}, "", at > now)
            )
            exits = STEP_KINDS[kind].exits(step) if kind in STEP_KINDS else []
            key = exits[0][1] if exits else None
        if len(run.lines) >= MAX_LINES:
            return None
    return None


def _condition(
    step: dict[str, Any], contact: Contact, entry: _Entry, events: list[Event], ctx: RuleContext, at: dt.datetime
) -> bool:
    if step.get("rules"):
        matched = (
            segment_queryset(workspace=ctx.workspace, rules=step["rules"], context=ctx)
            .filter(Q(pk=contact.pk))
            .exists()
        )
        if not matched:
            return False
    for check in step.get("events_since_entry", []):
        names = _matching_ids(check, events, ctx)
        if not any(
            e.pk in names and entry.entered_at <= e.occurred_at <= at
            and (not check["key_property"] or property_text(e.properties, check["key_property"]) == entry.key)
            for e in events
        ):  # fmt: skip
            return False
    if step.get("entry_where"):
        if (
            entry.event_id is None
            or not Event.objects.filter(property_filters_q(step["entry_where"], ctx.clock), pk=entry.event_id).exists()
        ):
            return False
    # Emails of a dry run were never sent: never opened, never clicked.
    return not step.get("email")
