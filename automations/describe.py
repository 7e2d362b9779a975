"""A series in words for the pages: its trigger, goal and rules, each step, and each trace row
of an enrollment ("sent Welcome (delivered, opened)", "skipped: frequency cap", "branch: yes").

The engine writes its trace reasons in plain English (they are data, read by the API too);
the known ones are put into the reader's language here, anything else is shown as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences.segments.compiler import describe_rules, validate_rules
from audiences.segments.registry import RuleContext
from audiences.segments.values import Op, ValueType, operator_label
from automations.models import ReEntry, Series, Trace, TraceOutcome
from automations.steps import STEP_KINDS
from campaigns.models import MessageState, SendPriority, SkipReason


@dataclass(frozen=True)
class Names:
    """What steps and triggers point at by id, by name (read once per page)."""

    templates: dict[int, str] = field(default_factory=dict)
    lists: dict[int, str] = field(default_factory=dict)
    segments: dict[int, str] = field(default_factory=dict)

    def template(self, pk: Any) -> str:
        return self.templates.get(pk) or _("email #%(id)s (missing)") % {"id": pk}

    def mailing_list(self, pk: Any) -> str:
        return self.lists.get(pk) or _("list #%(id)s (missing)") % {"id": pk}

    def segment(self, pk: Any) -> str:
        return self.segments.get(pk) or _("segment #%(id)s (missing)") % {"id": pk}


def referenced_ids(series: Series, steps: dict[str, Any] | None) -> tuple[set[int], set[int], set[int]]:
    """Template, list and segment ids named by the series' trigger and steps."""
    templates: set[int] = set()
    lists: set[int] = set()
    segments: set[int] = set()
    trigger = series.trigger or {}
    if isinstance(trigger.get("list"), int):
        lists.add(trigger["list"])
    if isinstance(trigger.get("segment"), int):
        segments.add(trigger["segment"])
    for step in (steps or {}).get("steps", []):
        if isinstance(step, dict) and isinstance(step.get("template"), int):
            templates.add(step["template"])
        if isinstance(step, dict) and isinstance(step.get("list"), int):
            lists.add(step["list"])
    return templates, lists, segments


def _amount(amount: int, unit: str) -> str:
    if unit == "minutes":
        return ngettext("%(n)d minute", "%(n)d minutes", amount) % {"n": amount}
    if unit == "hours":
        return ngettext("%(n)d hour", "%(n)d hours", amount) % {"n": amount}
    return ngettext("%(n)d day", "%(n)d days", amount) % {"n": amount}


NUMERIC = (Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN)


def filters_text(where: list[dict[str, Any]] | None) -> str:
    """Event property filters in words: "total greater than 50 and currency is EUR"."""
    parts = []
    for item in where or []:
        if not isinstance(item, dict):
            continue
        operator = item.get("operator", "")
        words = operator_label(ValueType.NUMBER if operator in NUMERIC else ValueType.TEXT, operator)
        value = item.get("value")
        if isinstance(value, list):
            value = " – ".join(str(v) for v in value) if operator == Op.BETWEEN else ", ".join(str(v) for v in value)
        text = f"{item.get('property', '')} {words}"
        if value is not None and operator not in (Op.IS_SET, Op.NOT_SET):
            text += f" {value}"
        parts.append(text)
    return _(" and ").join(parts)


def _event_text(spec: dict[str, Any], key_name: str = "") -> str:
    """An event with its filters; with `key_name`, the property that ties it to the entry."""
    text = f"“{spec.get('event', '')}”"
    if spec.get("where"):
        text += " " + _("where %(filters)s") % {"filters": filters_text(spec["where"])}
    if key_name and spec.get(key_name):
        text += " " + _("with the same %(key)s as the entry") % {"key": spec[key_name]}
    return text


def trigger_text(trigger: dict[str, Any], names: Names) -> str:
    kind = trigger.get("type")
    if kind == "event":
        text = _("When the contact does %(event)s") % {"event": _event_text(trigger)}
        if trigger.get("key"):
            text += " " + _("(one enrollment per %(key)s)") % {"key": trigger["key"]}
        return text
    if kind == "list":
        return _("When the contact joins the list %(list)s (after confirming, on double opt-in)") % {
            "list": names.mailing_list(trigger.get("list"))
        }
    if kind == "segment":
        name = names.segment(trigger.get("segment"))
        if trigger.get("on") == "exit":
            return _("When the contact leaves the segment %(segment)s") % {"segment": name}
        return _("When the contact enters the segment %(segment)s") % {"segment": name}
    if kind == "promo":
        audience = (
            names.segment(trigger["segment"]) if "segment" in trigger else names.mailing_list(trigger.get("list"))
        )
        return _("Everyone in %(audience)s enters once, at %(at)s") % {"audience": audience, "at": trigger.get("at")}
    if kind == "api":
        return _("Only through the API")
    if not kind:
        return _("Not set yet")
    return _("Trigger %(type)s: %(settings)s") % {
        "type": kind,
        "settings": ", ".join(f"{k} {v}" for k, v in trigger.items() if k != "type") or "—",
    }


def goal_text(goal: dict[str, Any]) -> str:
    if not goal:
        return _("No goal")
    return _("Converted when the contact does %(event)s") % {"event": _event_text(goal, "key")}


def re_entry_text(series: Series) -> str:
    if series.re_entry == ReEntry.PERIOD:
        days = series.re_entry_days or 0
        return ngettext("Once every %(n)d day", "Once every %(n)d days", days) % {"n": days}
    return str(ReEntry(series.re_entry).label) if series.re_entry in ReEntry.values else series.re_entry


def priority_text(priority: int) -> str:
    return str(SendPriority(priority).label) if priority in SendPriority.values else str(priority)


def flow_filter_text(series: Series, ctx: RuleContext) -> str:
    if not series.flow_filter:
        return _("Everyone (no filter)")
    try:
        return describe_rules(validate_rules(workspace=ctx.workspace, rules=series.flow_filter, context=ctx), ctx)
    except ValidationError:
        return _("These rules need fixing.")


@dataclass(frozen=True)
class StepView:
    key: str
    kind: str
    label: str
    name: str
    what: str
    # (label, the key of the next step or None: the series ends there)
    exits: list[tuple[str, str | None]]


def _send(step: dict[str, Any], names: Names, ctx: RuleContext | None) -> str:
    text = _("Send “%(template)s”") % {"template": names.template(step.get("template"))}
    if step.get("subject"):
        text += " " + _("with the subject “%(subject)s”") % {"subject": step["subject"]}
    return text


def _wait(step: dict[str, Any], names: Names, ctx: RuleContext | None) -> str:
    return _("Wait %(amount)s") % {"amount": _amount(step.get("amount", 0), step.get("unit", "days"))}


def _wait_for_event(step: dict[str, Any], names: Names, ctx: RuleContext | None) -> str:
    return _("Wait up to %(amount)s for %(event)s") % {
        "amount": _amount(step.get("timeout_amount", 0), step.get("timeout_unit", "days")),
        "event": _event_text(step, "key_property"),
    }


def _condition(step: dict[str, Any], names: Names, ctx: RuleContext | None) -> str:
    parts = []
    if step.get("rules") and ctx is not None:
        try:
            parts.append(describe_rules(validate_rules(workspace=ctx.workspace, rules=step["rules"], context=ctx), ctx))
        except ValidationError:
            parts.append(_("rules that need fixing"))
    for check in step.get("events_since_entry", []):
        parts.append(_("did %(event)s since entering") % {"event": _event_text(check, "key_property")})
    if step.get("entry_where"):
        parts.append(_("the entry has %(filters)s") % {"filters": filters_text(step["entry_where"])})
    for check in step.get("email", []):
        if check.get("action") == "clicked":
            parts.append(_("clicked the email of step %(step)s") % {"step": check.get("step")})
        else:
            parts.append(_("opened the email of step %(step)s") % {"step": check.get("step")})
    return _("If %(conditions)s") % {"conditions": _(" and ").join(parts) or _("always")}


def _split(step: dict[str, Any], names: Names, ctx: RuleContext | None) -> str:
    branches = [
        f"{b.get('name') or chr(ord('A') + i)} {b.get('percent')} %" for i, b in enumerate(step.get("branches", []))
    ]
    return _("Random split: %(branches)s") % {"branches": ", ".join(branches)}


def _exit(step: dict[str, Any], names: Names, ctx: RuleContext | None) -> str:
    return _("Exit the series")


STEP_WORDS: dict[str, Callable[[dict[str, Any], Names, RuleContext | None], str]] = {
    "send": _send,
    "wait": _wait,
    "wait_for_event": _wait_for_event,
    "condition": _condition,
    "split": _split,
    "exit": _exit,
}


def exit_label(name: str, step: dict[str, Any]) -> str:
    if name == "next":
        return _("then")
    if name == "yes":
        return _("yes")
    if name == "no":
        return _("no")
    found = re.fullmatch(r"branches\[(\d+)\]\.next", name)
    if found:
        index = int(found.group(1))
        branch = step.get("branches", [])[index]
        return str(branch.get("name") or chr(ord("A") + index))
    return name


def step_views(steps: dict[str, Any] | None, names: Names, ctx: RuleContext | None) -> list[StepView]:
    """The steps top to bottom as listed, each in words with where it leads."""
    views = []
    for step in (steps or {}).get("steps", []):
        kind_name = step.get("type", "")
        kind = STEP_KINDS.get(kind_name)
        words = STEP_WORDS.get(kind_name)
        if words is not None:
            what = words(step, names, ctx)
        else:
            what = (kind.describe(step) if kind else "") or (str(kind.label) if kind else kind_name)
        exits = [(exit_label(name, step), target) for name, target in (kind.exits(step) if kind else [])]
        views.append(
            StepView(
                key=step.get("key", ""),
                kind=kind_name,
                label=str(kind.label) if kind else kind_name,
                name=step.get("name", ""),
                what=what,
                exits=exits,
            )
        )
    return views


# --- trace rows ---------------------------------------------------------------------------

_FIXED_REASONS: dict[str, Callable[[], str]] = {
    "completed": lambda: _("completed"),
    "series archived": lambda: _("the series was archived"),
    "held out: receives no email": lambda: _("held out: receives no email"),
    "stale: fell due while the series was paused": lambda: _("stale: fell due while the series was paused"),
    "no longer matches the flow filter": lambda: _("no longer matches the flow filter"),
    "the step gave no result": lambda: _("the step gave no result"),
    "stopped after too many steps": lambda: _("stopped after too many steps"),
    "the step failed": lambda: _("the step failed"),
    "ended by hand": lambda: _("ended by hand"),
    "unsubscribed": lambda: _("unsubscribed"),
}
_PATTERN_REASONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^goal (.+) at (.+)$"), lambda m: _("goal %(event)s at %(at)s") % {"event": m[1], "at": m[2]}),
    (
        re.compile(r"^for (.+) until (.+)$"),
        lambda m: _("for %(event)s until %(at)s") % {"event": m[1], "at": m[2]},
    ),
    (re.compile(r"^until (.+)$"), lambda m: _("until %(at)s") % {"at": m[1]}),
    (re.compile(r"^no (.+) in time$"), lambda m: _("no %(event)s in time") % {"event": m[1]}),
    (re.compile(r"^(.+) arrived$"), lambda m: _("%(event)s arrived") % {"event": m[1]}),
    (re.compile(r"^exit step (.+)$"), lambda m: _("exit step %(step)s") % {"step": m[1]}),
    (re.compile(r"^suppressed: (.+)$"), lambda m: _("suppressed: %(reason)s") % {"reason": m[1]}),
]


def reason_text(reason: str) -> str:
    """An engine reason in the reader's language when it is a known one."""
    if not reason:
        return ""
    fixed = _FIXED_REASONS.get(reason)
    if fixed is not None:
        return fixed()
    for pattern, words in _PATTERN_REASONS:
        found = pattern.match(reason)
        if found:
            return words(found)
    return reason


def skip_reason_text(reason: str) -> str:
    """A skip reason of the send road (or of the engine, "stale: …") in words."""
    if reason in SkipReason.values:
        return str(SkipReason(reason).label)
    if reason in MessageState.values:
        return str(MessageState(reason).label)
    return reason_text(reason)


def branch_text(branch: str) -> str:
    return {"yes": _("yes"), "no": _("no")}.get(branch, branch)


def trace_text(trace: Trace) -> str:
    """One trace row as a line of the timeline."""
    outcome = trace.outcome
    reason = reason_text(trace.reason)
    message = trace.message
    if outcome == TraceOutcome.SENT:
        if message is not None and message.state in (MessageState.SKIPPED, MessageState.SUPPRESSED):
            return _("skipped %(email)s: %(why)s") % {
                "email": trace.reason,
                "why": skip_reason_text(message.reason or message.state),
            }
        done = []
        if message is not None:
            if message.state != MessageState.SENT:
                done.append(str(MessageState(message.state).label).lower())
            if message.delivered_at:
                done.append(_("delivered"))
            if message.opened_at:
                done.append(_("opened"))
            if message.clicked_at:
                done.append(_("clicked"))
        text = _("sent %(email)s") % {"email": trace.reason}
        return f"{text} ({', '.join(done)})" if done else text
    if outcome == TraceOutcome.ENTERED:
        return _("entered")
    if outcome == TraceOutcome.HELD_OUT:
        return _("held out: receives no email")
    if outcome == TraceOutcome.SKIPPED:
        return _("skipped: %(why)s") % {"why": reason or _("no reason given")}
    if outcome == TraceOutcome.WAITING:
        return _("waiting %(why)s") % {"why": reason} if reason else _("waiting")
    if outcome == TraceOutcome.WAITED:
        return _("wait over")
    if outcome == TraceOutcome.BRANCHED:
        text = _("branch: %(branch)s") % {"branch": branch_text(trace.branch)}
        return f"{text} ({reason})" if reason else text
    if outcome == TraceOutcome.CONVERTED:
        return _("converted: %(why)s") % {"why": reason} if reason else _("converted")
    if outcome == TraceOutcome.EXITED:
        return _("exited: %(why)s") % {"why": reason} if reason else _("exited")
    if outcome == TraceOutcome.COMPLETED:
        return _("completed")
    if outcome == TraceOutcome.FAILED:
        return _("failed: %(why)s") % {"why": reason} if reason else _("failed")
    label = str(TraceOutcome(outcome).label) if outcome in TraceOutcome.values else outcome
    return f"{label}: {reason}" if reason else label
