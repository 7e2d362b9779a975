"""Send an email: a template of the workspace, optionally with its own subject.

Before the Message is made, each contact is checked again against the series' goal (an order
that arrived during the wait converts instead of mailing) and flow filter. The Message is made
in the run's transaction with the source `step:<enrollment>:<step key>`, so whatever runs the
step twice finds the message it made; the send road checks suppression, caps, quiet hours,
smart sending and the series again when it sends.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.segments.values import RuleErrors
from automations.engine.checks import flow_filter_matches, goal_events, goal_matches, goal_reason
from automations.engine.walk import RunContext, Walker
from automations.models import EnrollmentState, Series, SeriesKind, TraceOutcome
from automations.steps.common import clean_id
from automations.steps.registry import CleanContext, End, Go, Result, StepKind, next_exit, register_step_kind
from campaigns.delivery.services import QueuedMessage, messages_enqueue_rows
from campaigns.models import EmailTemplate, MessageClass, MessageSource


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    templates = ctx.cached(
        "templates", lambda: set(EmailTemplate.objects.in_workspace(ctx.workspace).values_list("pk", flat=True))
    )
    cleaned: dict[str, Any] = {}
    if step.get("template") in (None, ""):
        errors.add(f"{path}.template", _("Choose the email to send."))
    else:
        template = clean_id(step.get("template"), f"{path}.template", errors, templates, _("No such email template."))
        if template is not None:
            cleaned["template"] = template
    subject = step.get("subject", "")
    if not isinstance(subject, str) or len(subject) > 998:
        errors.add(f"{path}.subject", _("Expected a subject of at most 998 characters."))
    elif subject.strip():
        cleaned["subject"] = subject.strip()
    return cleaned


def message_class_of(series: Series, template: EmailTemplate) -> str:
    """What a send step's email goes as: everything of a transactional series is transactional;
    otherwise the template says (a step has no class of its own)."""
    return MessageClass.TRANSACTIONAL if series.kind == SeriesKind.TRANSACTIONAL else template.message_class


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    stale_before = ctx.series.stale_before
    live = []
    for walker in walkers:
        if stale_before is not None and walker.fell_due_at is not None and walker.fell_due_at < stale_before:
            results[walker.id] = Go(
                step.get("next"), TraceOutcome.SKIPPED, "stale: fell due while the series was paused"
            )
        elif walker.holdout:
            results[walker.id] = Go(step.get("next"), TraceOutcome.HELD_OUT, "held out: receives no email")
        else:
            live.append(walker)
    if not live:
        return results
    contacts = {w.contact_id for w in live}
    events = goal_events(ctx.series, contacts, min(w.entered_at for w in live), ctx.now)
    matching = flow_filter_matches(ctx.series, contacts, ctx.now)
    sending = []
    for walker in live:
        reached = next(
            (e for e in events if goal_matches(ctx.series, e, walker.contact_id, walker.entry_key, walker.entered_at)),
            None,
        )
        if reached is not None:
            results[walker.id] = End(EnrollmentState.CONVERTED, TraceOutcome.CONVERTED, goal_reason(reached))
        elif walker.contact_id not in matching:
            results[walker.id] = End(EnrollmentState.EXITED, TraceOutcome.EXITED, "no longer matches the flow filter")
        else:
            sending.append(walker)
    if not sending:
        return results
    template = EmailTemplate.objects.filter(workspace=ctx.workspace, pk=step["template"]).first()
    if template is None:
        # Deleted after the version was published: say so instead of failing silently.
        results.update(
            {w.id: End(EnrollmentState.FAILED, TraceOutcome.FAILED, "the email template is gone") for w in sending}
        )
        return results
    message_class = message_class_of(ctx.series, template)
    sources = {w.id: str(MessageSource.step(w.id, step["key"])) for w in sending}
    made = messages_enqueue_rows(
        workspace=ctx.workspace,
        rows=[
            QueuedMessage(
                contact_id=w.contact_id,
                source=sources[w.id],
                template_id=template.pk,
                message_class=message_class,
                data={"event": w.entry_data},
                priority=ctx.series.priority,
                smart_sending=ctx.series.smart_sending and message_class == MessageClass.MARKETING,
                due_at=ctx.now,
                subject_override=step.get("subject", ""),
            )
            for w in sending
        ],
    )
    for walker in sending:
        results[walker.id] = Go(
            step.get("next"), TraceOutcome.SENT, template.name, message_id=made.get(sources[walker.id])
        )
    return results


SEND = register_step_kind(
    StepKind(
        name="send",
        label=gettext_lazy("Send email"),
        fields=frozenset({"template", "subject"}),
        clean=_clean,
        exits=next_exit,
        run=_run,
    )
)
