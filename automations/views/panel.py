"""The builder's side panel beyond its forms (htmx fragments of the panel):

- a send step's email as a thumbnail, rendered for a sample contact of the workspace with the
  step's subject (GET: viewers see it too);
- a webhook step's "send a test call": a sample body, signed, posted to the URL through the
  outbound guard, and what came back (POST: marketers; one call per series every few seconds).

Another workspace's series, template or contact is a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from audiences.models import Contact
from automations import step_samples
from automations.views.common import error_text, series_or_404
from automations.webhooks import TIMEOUT, WebhookTestResult
from campaigns.content import selectors as content_selectors
from campaigns.content.rendering import MAX_SUBJECT_CHARS
from esp import attempts
from esp.input import parse_id
from esp.models import Role
from esp.web import WorkspaceView

# One test call per series at a time, a few seconds apart: a button, not a load generator.
WEBHOOK_TEST_LIMIT = (attempts.Limit("series-webhook-test", 1, 5),)


class SeriesEmailPreviewView(WorkspaceView):
    """?template=<id>&subject=<the step's subject>&sample_contact=<id> (both optional)."""

    template_name = "automations/partials/panel_email_preview.html"

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        raw_template = request.GET.get("template", "").strip()
        raw_contact = request.GET.get("sample_contact", "").strip()
        subject = request.GET.get("subject", "")
        if not raw_template:
            return render(request, self.template_name, {"series": series, "preview": None})
        template_id = parse_id(raw_template)
        contact_id = parse_id(raw_contact) if raw_contact else None
        if template_id is None or (raw_contact and contact_id is None) or len(subject) > MAX_SUBJECT_CHARS:
            problem = _("This preview cannot be made: choose a template and a contact from the lists.")
            return render(request, self.template_name, {"series": series, "problem": problem}, status=400)
        template = content_selectors.template_get(workspace=self.workspace, template_id=template_id)
        try:
            person = step_samples.sample_person(workspace=self.workspace, series=series, contact_id=contact_id)
        except Contact.DoesNotExist:
            raise Http404 from None
        preview = step_samples.email_preview(
            workspace=self.workspace, series=series, template=template, subject=subject, person=person
        )
        people = step_samples.sample_people(workspace=self.workspace, series=series, chosen=person)
        return render(request, self.template_name, {"series": series, "preview": preview, "people": people})


class SeriesWebhookTestView(WorkspaceView):
    """POST step=<key>&url=<the URL typed in the panel; empty: the step's saved URL>."""

    read_role = Role.MARKETER
    template_name = "automations/partials/panel_webhook_test.html"

    def post(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        key = request.POST.get("step", "")
        context: dict[str, Any] = {"series": series}
        status = 200
        if attempts.hit([(WEBHOOK_TEST_LIMIT, str(series.pk))]) is not None:
            context["problem"] = _("A test call was just made: wait a few seconds before the next one.")
            status = 429
        else:
            try:
                context["call"] = step_samples.step_webhook_test(
                    workspace=self.workspace, series=series, step_key=key, url=request.POST.get("url", "")
                )
            except ValidationError as error:
                context["problem"] = error_text(error)
                status = 400
        if "call" in context:
            context["summary"] = call_summary(context["call"])
        if request.htmx:  # type: ignore[attr-defined]
            return render(request, self.template_name, context, status=status)
        # Without JavaScript: the answer as a message on the builder, the step still open.
        if "call" in context:
            messages.info(request, _("Test call: %(result)s") % {"result": context["summary"]})
        else:
            messages.error(request, context["problem"])
        return redirect(f"{reverse('series-builder', args=[series.pk])}?step={quote(key)}")


def call_summary(call: WebhookTestResult) -> str:
    """What a test call got, in words."""
    numbers = {"status": call.status or 0, "ms": call.milliseconds}
    if call.problem == "refused":
        return _(
            "Refused: the URL leads to an address the server never calls "
            "(loopback, private, link-local or cloud metadata)."
        )
    if call.problem == "timeout":
        return _("No answer in time: a call waits %(connect)g s to connect and %(read)g s for the answer.") % {
            "connect": TIMEOUT[0],
            "read": TIMEOUT[1],
        }
    if call.problem == "connection":
        return _("Could not connect (%(error)s) after %(ms)d ms.") % {"error": call.error, "ms": call.milliseconds}
    if call.problem == "redirect":
        return _("HTTP %(status)d after %(ms)d ms: redirects are not followed, give the final URL.") % numbers
    if call.delivered:
        return _("HTTP %(status)d after %(ms)d ms: a real call would count as delivered.") % numbers
    return _("HTTP %(status)d after %(ms)d ms: a real call would be retried (only a 2xx answer delivers it).") % numbers
