"""Branch yes / no on what the contact is and did, decided for the whole group at once.

    {"type": "condition",
     "rules": {segment rule tree},                         # anything a segment can say
     "events_since_entry": [{"event": "Order Completed", "where": […], "key_property": "cart_id"}],
     "email": [{"step": "welcome", "action": "opened" | "clicked"}],
     "entry_where": [{"property": "total", "operator": "gt", "value": 100}],
     "yes": "…", "no": "…"}

Every part given must hold for "yes". The rule tree goes through the segment compiler (one
query for the group); events since entry and the email of an earlier step are per enrollment,
read in one query each. `entry_where` looks at the entry's data (the trigger event's
properties: "cart total over 100"), read from the enrollments in one query.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.models import Event
from audiences.segments.compiler import segment_queryset, validate_rules
from audiences.segments.event_conditions import clean_property_filters, property_filters_q
from audiences.segments.registry import RuleContext
from audiences.segments.values import RuleErrors
from automations.engine.checks import property_text
from automations.engine.walk import RunContext, Walker
from automations.models import Enrollment, TraceOutcome
from automations.steps.registry import CleanContext, Go, Result, StepKind, register_step_kind, yes_no_exits
from campaigns.models import Message, MessageSource

ACTIONS = ("opened", "clicked")
MAX_CHECKS = 10


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if step.get("rules") not in (None, {}):
        try:
            cleaned["rules"] = validate_rules(workspace=ctx.workspace, rules=step["rules"])
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                for message in messages:
                    errors.add(f"{path}.rules.{field}" if field != "rules" else f"{path}.rules", message)
    events = step.get("events_since_entry") or []
    if not isinstance(events, list) or len(events) > MAX_CHECKS:
        errors.add(f"{path}.events_since_entry", _("Expected a list of at most %(max)d events.") % {"max": MAX_CHECKS})
        events = []
    cleaned_events = []
    for index, item in enumerate(events):
        item_path = f"{path}.events_since_entry[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("event"), str) or not item["event"].strip():
            errors.add(item_path, _("Expected an object naming the event."))
            continue
        for unknown in sorted(set(item) - {"event", "where", "key_property"}):
            errors.add(f"{item_path}.{unknown}", _("Unknown field %(field)r.") % {"field": unknown})
        key = item.get("key_property") or ""
        if not isinstance(key, str) or len(key) > 100:
            errors.add(f"{item_path}.key_property", _("Expected the name of an event property."))
            key = ""
        cleaned_events.append({
            "event": item["event"].strip()[:200],
            "where": clean_property_filters(item.get("where"), f"{item_path}.where", errors),
            "key_property": key,
        })  # fmt: skip
    if cleaned_events:
        cleaned["events_since_entry"] = cleaned_events
    emails = step.get("email") or []
    if not isinstance(emails, list) or len(emails) > MAX_CHECKS:
        errors.add(f"{path}.email", _("Expected a list of at most %(max)d email checks.") % {"max": MAX_CHECKS})
        emails = []
    cleaned_emails = []
    for index, item in enumerate(emails):
        item_path = f"{path}.email[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("step"), str) or item.get("action") not in ACTIONS:
            errors.add(item_path, _('Expected {"step": a send step\'s key, "action": opened or clicked}.'))
            continue
        cleaned_emails.append({"step": item["step"], "action": item["action"]})
    if cleaned_emails:
        cleaned["email"] = cleaned_emails
    entry_where = clean_property_filters(step.get("entry_where"), f"{path}.entry_where", errors)
    if entry_where:
        cleaned["entry_where"] = entry_where
    if not cleaned and not errors:
        errors.add(path, _("Say what to check: rules, events_since_entry, email or entry_where."))
    return cleaned


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    yes = {w.id for w in walkers}
    contacts = {w.contact_id for w in walkers}
    if step.get("rules"):
        rule_ctx = RuleContext(ctx.workspace, now=ctx.now, contact_ids=sorted(contacts))
        matching = set(
            segment_queryset(workspace=ctx.workspace, rules=step["rules"], context=rule_ctx, now=ctx.now)
            .filter(pk__in=contacts)
            .values_list("pk", flat=True)
        )
        yes = {w.id for w in walkers if w.id in yes and w.contact_id in matching}
    for check in step.get("events_since_entry", []):
        clock = RuleContext(ctx.workspace, now=ctx.now).clock
        events = Event.objects.filter(
            property_filters_q(check["where"], clock),
            workspace_id=ctx.workspace.pk,
            contact_id__in=contacts,
            name=check["event"],
            occurred_at__gte=min(w.entered_at for w in walkers),
            occurred_at__lte=ctx.now,  # not after the engine's now (a replay of history)
        ).values_list("contact_id", "occurred_at", "properties")
        done = set()
        for contact_id, occurred_at, properties in events:
            for walker in walkers:
                if (
                    walker.contact_id == contact_id
                    and occurred_at >= walker.entered_at
                    and (
                        not check["key_property"]
                        or property_text(properties, check["key_property"]) == walker.entry_key
                    )
                ):
                    done.add(walker.id)
        yes &= done
    for check in step.get("email", []):
        field = "opened_at" if check["action"] == "opened" else "clicked_at"
        sources = [str(MessageSource.step(w.id, check["step"])) for w in walkers]
        engaged = Message.objects.filter(
            Q(**{f"{field}__isnull": False}), workspace_id=ctx.workspace.pk, source__in=sources
        ).values_list("source", flat=True)
        engaged_ids = {int(MessageSource.parse(source).key.split(":")[0]) for source in engaged}
        yes &= engaged_ids
    if step.get("entry_where"):
        clock = RuleContext(ctx.workspace, now=ctx.now).clock
        yes &= set(
            Enrollment.objects.filter(
                property_filters_q(step["entry_where"], clock, field="entry_data"), pk__in=[w.id for w in walkers]
            ).values_list("pk", flat=True)
        )
    return {
        w.id: Go(
            step.get("yes") if w.id in yes else step.get("no"),
            TraceOutcome.BRANCHED,
            "",
            "yes" if w.id in yes else "no",
        )
        for w in walkers
    }


CONDITION = register_step_kind(
    StepKind(
        name="condition",
        label=gettext_lazy("Condition"),
        fields=frozenset({"rules", "events_since_entry", "email", "entry_where"}),
        clean=_clean,
        exits=yes_no_exits,
        run=_run,
    )
)
