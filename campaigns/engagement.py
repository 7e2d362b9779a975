"""The "engagement" kind of segment condition: who opened or clicked our email.

    {"kind": "engagement", "did": true, "action": "opened" | "clicked",
     "template_id": null | 12, "period": "ever" | "in_last_days", "days": 30, "count": 1}

"opened any email in the last 30 days", "did not click “Welcome” ever", "opened at least 3
times". It reads MessageEvent, not the event store: the rows carry the contact, the type, the
time and the machine flag, on the partial index message_event_engagement (contact, type,
occurred_at) WHERE NOT is_machine — opens by Apple's privacy proxy or link scanners never count.

Registered from CampaignsConfig.ready() (audiences does not import campaigns).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from weakref import WeakKeyDictionary

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audiences.segments import conditions  # noqa: F401 — the built-in kinds come first in the builder
from audiences.segments.registry import ConditionKind, RuleContext, register_condition_kind
from audiences.segments.values import RuleErrors, at, days_value
from campaigns.models import EmailTemplate, MessageEvent, MessageEventType
from esp.input import parse_id
from esp.plurals import plural_forms

ACTIONS = (MessageEventType.OPENED, MessageEventType.CLICKED)
PERIODS = ("ever", "in_last_days")
MAX_COUNT = 1_000_000
KEYS = frozenset({"did", "action", "template_id", "period", "days", "count"})

# The workspace's templates, read once per RuleContext (a refresh of all segments of a
# workspace checks many conditions with one context).
_TEMPLATES: WeakKeyDictionary[RuleContext, dict[int, str]] = WeakKeyDictionary()


def _templates(ctx: RuleContext) -> dict[int, str]:
    if ctx not in _TEMPLATES:
        _TEMPLATES[ctx] = dict(EmailTemplate.objects.in_workspace(ctx.workspace).values_list("pk", "name"))
    return _TEMPLATES[ctx]


def _clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    for key in sorted(set(condition) - KEYS - {"kind"}):
        errors.add(at(path, key), _("Unknown key %(key)r for this kind of condition.") % {"key": key})
    did = condition.get("did", True)
    if not isinstance(did, bool):
        errors.add(at(path, "did"), _("Expected true or false."))
        did = True
    action = condition.get("action", MessageEventType.OPENED)
    if action not in ACTIONS:
        errors.add(
            at(path, "action"),
            _("%(action)r is not one of: %(allowed)s.") % {"action": action, "allowed": ", ".join(ACTIONS)},
        )
    raw_template = condition.get("template_id")
    template_id: int | None = None
    if raw_template not in (None, ""):
        if parse_id(raw_template) is None or parse_id(raw_template) not in _templates(ctx):
            # Another workspace's template is "no such template" too: its existence is not confirmed.
            errors.add(
                at(path, "template_id"),
                _("No such template in this workspace: %(value)r.") % {"value": raw_template},
            )
        else:
            template_id = int(str(raw_template))
    count = condition.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        errors.add(at(path, "count"), _("Expected a whole number from 1 to %(max)d.") % {"max": MAX_COUNT})
        count = 1
    period = condition.get("period", "ever")
    cleaned: dict[str, Any] = {
        "kind": "engagement",
        "did": did,
        "action": action,
        "template_id": template_id,
        "period": period,
        "count": count,
    }
    if period == "in_last_days":
        cleaned["days"] = days_value(condition.get("days"), at(path, "days"), errors)
    elif period != "ever":
        errors.add(
            at(path, "period"),
            _("%(period)r is not one of: %(allowed)s.") % {"period": period, "allowed": ", ".join(PERIODS)},
        )
    return cleaned


def _events(condition: dict[str, Any], ctx: RuleContext) -> QuerySet[MessageEvent]:
    """The human opens (or clicks) of the condition, of the contact of the outer query.

    No workspace filter: the outer query is the workspace's contacts, and an event carries its
    message's contact; naming only (contact, type, occurred_at) keeps each probe inside the
    partial engagement index."""
    # A click counts as an open too, as on the message (opened_at): the pixel of a reader who
    # blocks images never loads, their click shows they opened it.
    if condition["action"] == MessageEventType.OPENED:
        types = [MessageEventType.OPENED, MessageEventType.CLICKED]
    else:
        types = [condition["action"]]
    events = MessageEvent.objects.filter(contact_id=OuterRef("pk"), type__in=types, is_machine=False)
    if condition["period"] == "in_last_days":
        events = events.filter(occurred_at__gte=ctx.clock.now - dt.timedelta(days=condition["days"]))
    if condition["template_id"] is not None:
        events = events.filter(message__template_id=condition["template_id"])
    return events


def _compile(condition: dict[str, Any], ctx: RuleContext) -> Q:
    """EXISTS per contact (NOT EXISTS for "did not"): never NULL, so "did not" is exactly the
    complement of "did" — contacts never mailed included."""
    events: QuerySet[Any] = _events(condition, ctx)
    if condition["count"] > 1:
        events = events.values("contact_id").annotate(n=Count("*")).filter(n__gte=condition["count"])
    has = Q(Exists(events))
    return has if condition["did"] else ~has


def _describe(condition: dict[str, Any], ctx: RuleContext) -> str:
    opened = condition["action"] == MessageEventType.OPENED
    if condition["did"]:
        verb = _("opened") if opened else _("clicked")
    else:
        verb = _("did not open") if opened else _("did not click")
    if condition["template_id"] is None:
        what = _("any email")
    else:
        name = _templates(ctx).get(condition["template_id"], f"#{condition['template_id']}")
        what = _("the email “%(template)s”") % {"template": name}
    parts = [verb, what]
    if condition["count"] > 1:
        n = condition["count"]
        parts.append(ngettext("at least %(n)d time", "at least %(n)d times", n) % {"n": n})
    if condition["period"] == "in_last_days":
        parts.append(_("in the last %(days)d days") % {"days": condition["days"]})
    else:
        parts.append(_("ever"))
    return " ".join(parts)


def _schema(ctx: RuleContext) -> dict[str, Any]:
    """What the builder's engagement row offers (static/js/segment_builder.js), with its words."""
    return {
        "actions": [
            {"value": "true|opened", "label": _("opened")},
            {"value": "true|clicked", "label": _("clicked")},
            {"value": "false|opened", "label": _("did not open")},
            {"value": "false|clicked", "label": _("did not click")},
        ],
        "templates": [{"value": "", "label": _("any email")}]
        + [{"value": pk, "label": name} for pk, name in sorted(_templates(ctx).items(), key=lambda item: item[1])],
        "periods": [{"value": "in_last_days", "label": _("in the last")}, {"value": "ever", "label": _("ever")}],
        "text": {
            "days": _("days"),
            "at_least": _("at least"),
            "times": _("times"),
            "days_forms": plural_forms(lambda n: ngettext("day", "days", n)),
            "times_forms": plural_forms(lambda n: ngettext("time", "times", n)),
        },
    }


ENGAGEMENT = ConditionKind(
    name="engagement",
    label=gettext_lazy("Email engagement"),
    keys=KEYS,
    clean=_clean,
    compile=_compile,
    describe=_describe,
    schema=_schema,
    time_relative=lambda condition: condition.get("period") == "in_last_days",
)


def register() -> None:
    register_condition_kind(ENGAGEMENT)
