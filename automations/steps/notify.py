"""Tell the team: an internal email about the contact ("VIP placed a big order").

    {"type": "notify", "to": "sales@shop.example" | "owners", "subject": "VIP placed a big order",
     "text": "Call them today.", "next": …}

`to` defaults to the workspace's owners. The mail carries the text, the contact's name,
address, external id, a link to their profile and the entry's data; it is sent by
automations.notify through the service's account mail after the run commits (why not a
contact Message: see there). The enrollment goes on at once.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.segments.values import RuleErrors
from automations.engine.walk import RunContext, Walker
from automations.models import TraceOutcome
from automations.notify import OWNERS
from automations.steps.registry import CleanContext, Go, Result, StepKind, next_exit, register_step_kind
from esp.queue import enqueue_after_commit

MAX_SUBJECT = 200
MAX_TEXT = 2000


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    to = step.get("to", OWNERS)
    if to != OWNERS:
        try:
            if not isinstance(to, str) or len(to) > 254:
                raise ValidationError("")
            validate_email(to.strip())
            cleaned["to"] = to.strip()
        except ValidationError:
            errors.add(f"{path}.to", _('Expected an email address, or "owners".'))
    else:
        cleaned["to"] = OWNERS
    subject = step.get("subject")
    if not isinstance(subject, str) or not subject.strip() or len(subject.strip()) > MAX_SUBJECT:
        errors.add(f"{path}.subject", _("Expected a subject of at most %(max)d characters.") % {"max": MAX_SUBJECT})
    else:
        cleaned["subject"] = " ".join(subject.split())
    text = step.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        errors.add(f"{path}.text", _("Expected a text of at most %(max)d characters.") % {"max": MAX_TEXT})
    else:
        cleaned["text"] = text.strip()
    return cleaned


def describe(step: dict[str, Any]) -> str:
    to = step.get("to", OWNERS)
    who = _("the workspace's owners") if to == OWNERS else to
    return _("notify %(who)s: %(subject)s") % {"who": who, "subject": step.get("subject", "")}


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    from automations.tasks import send_notifications

    enqueue_after_commit(send_notifications, ctx.version.pk, step["key"], [w.id for w in walkers])
    reason = f"to {step.get('to', OWNERS)}: {step['subject']}"[:400]
    return {w.id: Go(step.get("next"), TraceOutcome.NOTIFIED, reason) for w in walkers}


NOTIFY = register_step_kind(
    StepKind(
        name="notify",
        label=gettext_lazy("Notify the team"),
        fields=frozenset({"to", "subject", "text"}),
        clean=_clean,
        exits=next_exit,
        run=_run,
        describe=describe,
    )
)
