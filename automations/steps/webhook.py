"""Call the shop's (or a tool's) URL: POST a signed JSON body about the contact and the entry.

    {"type": "webhook", "url": "https://shop.example.com/hooks/esp", "next": …}

The body: {"series": {"id", "name"}, "step": key, "enrollment": {"id", "entry_key", "entered_at"},
"contact": {"id", "email", "external_id"}, "data": the entry's data}. The step writes one
WebhookDelivery row per enrollment (in the run's transaction) and goes on at once; the rows
are posted, signed and retried by automations.webhooks. A URL whose host is private,
loopback, link-local or metadata is refused here already, and again at every connection.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.models import Contact
from audiences.segments.values import RuleErrors
from automations.engine.walk import RunContext, Walker
from automations.models import TraceOutcome, WebhookDelivery
from automations.steps.registry import CleanContext, Go, Result, StepKind, next_exit, register_step_kind
from esp.net import outbound_host_error
from esp.queue import enqueue_after_commit

MAX_URL = 2000


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    url = step.get("url")
    if not isinstance(url, str) or not url.strip() or len(url.strip()) > MAX_URL:
        errors.add(f"{path}.url", _("Expected an http or https URL of at most 2000 characters."))
        return {}
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        parts, port = None, 0
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        errors.add(f"{path}.url", _("Expected an http or https URL of at most 2000 characters."))
        return {}
    refused = outbound_host_error(parts.hostname, port)
    if refused:
        errors.add(f"{path}.url", _("This address is not allowed: %(why)s.") % {"why": refused})
        return {}
    return {"url": url}


def describe(step: dict[str, Any]) -> str:
    host = urlsplit(str(step.get("url", ""))).hostname or ""
    return _("call the webhook at %(host)s") % {"host": host}


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    from automations.tasks import deliver_webhooks

    contacts = {
        pk: {"id": pk, "email": email, "external_id": external_id}
        for pk, email, external_id in Contact.objects.filter(
            workspace_id=ctx.workspace.pk, pk__in={w.contact_id for w in walkers}
        ).values_list("pk", "email", "external_id")
    }
    series = {"id": ctx.series.pk, "name": ctx.series.name}
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                workspace_id=ctx.workspace.pk,
                enrollment_id=w.id,
                step_key=step["key"],
                url=step["url"],
                body={
                    "series": series,
                    "step": step["key"],
                    "enrollment": {"id": w.id, "entry_key": w.entry_key, "entered_at": w.entered_at.isoformat()},
                    "contact": contacts.get(w.contact_id, {"id": w.contact_id}),
                    "data": w.entry_data,
                },
                due_at=ctx.now,
                created_at=ctx.now,
            )
            for w in walkers
        ],
        # A step run again (a new version mapped people back onto it) never posts twice.
        ignore_conflicts=True,
    )
    enqueue_after_commit(deliver_webhooks)
    reason = f"POST {urlsplit(step['url']).hostname}"
    return {w.id: Go(step.get("next"), TraceOutcome.WEBHOOK, reason) for w in walkers}


WEBHOOK = register_step_kind(
    StepKind(
        name="webhook",
        label=gettext_lazy("Webhook"),
        fields=frozenset({"url"}),
        clean=_clean,
        exits=next_exit,
        run=_run,
        describe=describe,
    )
)
