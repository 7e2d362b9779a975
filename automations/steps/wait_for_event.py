"""Wait for an event, up to a timeout, then go on by "yes" (it came) or "no" (time ran out).

Keyed to the entry: with `key_property`, only an event whose property of that name equals the
enrollment's entry key counts — the order of cart A never answers the wait of cart B. An event
that came after entry but before the step was reached counts too (the order placed during the
previous wait).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.models import Event
from audiences.segments.event_conditions import clean_property_filters, property_filters_q
from audiences.segments.registry import RuleContext
from audiences.segments.values import RuleErrors
from automations.engine.checks import property_text
from automations.engine.walk import RunContext, Walker
from automations.models import TraceOutcome
from automations.steps.common import clean_duration, duration
from automations.steps.registry import CleanContext, Go, Result, StepKind, Wait, register_step_kind, yes_no_exits


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    event = step.get("event")
    cleaned: dict[str, Any] = {}
    if not isinstance(event, str) or not event.strip() or len(event) > 200:
        errors.add(f"{path}.event", _("Name the event to wait for (at most 200 characters)."))
    else:
        cleaned["event"] = event.strip()
    key = step.get("key_property") or ""
    if not isinstance(key, str) or len(key) > 100:
        errors.add(f"{path}.key_property", _("Expected the name of an event property."))
    elif key:
        cleaned["key_property"] = key
    cleaned["where"] = clean_property_filters(step.get("where"), f"{path}.where", errors)
    cleaned.update(clean_duration(step, path, errors, prefix="timeout_"))
    return cleaned


def matching_events(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, int]:
    """Enrollment id -> the id of an event that answers the wait (after entry, keyed)."""
    if not walkers:
        return {}
    clock = RuleContext(ctx.workspace, now=ctx.now).clock
    events = Event.objects.filter(
        property_filters_q(step.get("where") or [], clock),
        workspace_id=ctx.workspace.pk,
        contact_id__in={w.contact_id for w in walkers},
        name=step["event"],
        occurred_at__gte=min(w.entered_at for w in walkers),
        # Not after the engine's now: what the clock has not reached has not happened (a replay).
        occurred_at__lte=ctx.now,
    ).values_list("id", "contact_id", "occurred_at", "properties")
    found: dict[int, int] = {}
    for event_id, contact_id, occurred_at, properties in events:
        for walker in walkers:
            if walker.contact_id == contact_id and occurred_at >= walker.entered_at and walker.id not in found:
                if not step.get("key_property") or property_text(properties, step["key_property"]) == walker.entry_key:
                    found[walker.id] = event_id
    return found


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    arriving = [w for w in walkers if not w.waiting and w.wait_met_event_id is None]
    already = matching_events(step, arriving, ctx)
    timeout = duration(step, prefix="timeout_")
    for walker in walkers:
        started = walker.step_started_at or ctx.now
        if walker.wait_met_event_id is not None or walker.id in already:
            results[walker.id] = Go(step.get("yes"), TraceOutcome.BRANCHED, f"{step['event']} arrived", "yes")
        elif walker.waiting and started + timeout <= ctx.now:
            results[walker.id] = Go(step.get("no"), TraceOutcome.BRANCHED, f"no {step['event']} in time", "no")
        else:
            results[walker.id] = Wait(
                started + timeout,
                f"for {step['event']} until {(started + timeout):%Y-%m-%d %H:%M} UTC",
                wait_event=step["event"],
                wait_key=walker.entry_key if step.get("key_property") else "",
                trace=not walker.waiting,
            )
    return results


WAIT_FOR_EVENT = register_step_kind(
    StepKind(
        name="wait_for_event",
        label=gettext_lazy("Wait for an event"),
        fields=frozenset({"event", "where", "key_property", "timeout_amount", "timeout_unit"}),
        clean=_clean,
        exits=yes_no_exits,
        run=_run,
        waits=True,
    )
)
