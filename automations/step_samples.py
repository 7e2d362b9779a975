"""What the builder's side panel shows or tries beside a step, with sample data: a send step's
email rendered for a sample person, and a webhook step's test call with a sample body.

The email is rendered by the send road's own renderer (campaigns.content.rendering.render_email,
with the step's subject override as Message.subject_override), for a contact of the workspace
and the data the step's message would carry: the contact's own entry into this series when
there is one, else their last event of the trigger's name, else the built-in sample of that
event.

A test call posts through automations.webhooks, the code path of real deliveries (the outbound
guard, its timeouts, no redirect followed), once, and records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from audiences.models import Contact
from audiences.segments.values import RuleErrors
from automations import selectors, webhooks
from automations.models import Enrollment, Series
from automations.steps import STEP_KINDS
from automations.steps.registry import CleanContext
from automations.steps.send import message_class_of
from campaigns.content import selectors as content_selectors
from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.rendering import RenderedEmail, contact_as_dict, email_context, render_email
from campaigns.content.starters import SAMPLE_CONTACT, SAMPLE_EVENTS, SAMPLE_RECOMMENDATIONS
from campaigns.models import EmailTemplate, MessageClass
from esp.models import Workspace

# Links of a preview: nothing to unsubscribe from; the sandboxed frame stays put.
PREVIEW_URLS = {"unsubscribe_url": "#unsubscribe", "preferences_url": "#preferences", "view_in_browser_url": "#browser"}
# How many people the panel offers to preview the email for.
SAMPLE_PEOPLE = 30


@dataclass(frozen=True)
class SamplePerson:
    """Whom a preview is personalised for, and the entry data their message would carry."""

    contact: dict[str, Any]
    contact_id: int | None
    label: str
    event: dict[str, Any] = field(default_factory=dict)
    # Where `event` came from, in words ("their entry into this series").
    event_source: str = ""


@dataclass(frozen=True)
class EmailPreview:
    template: EmailTemplate
    person: SamplePerson
    rendered: RenderedEmail | None
    problem: str
    message_class: str


def trigger_event_name(series: Series) -> str:
    trigger = series.trigger if isinstance(series.trigger, dict) else {}
    name = trigger.get("event") if trigger.get("type") == "event" else ""
    return name if isinstance(name, str) else ""


def trigger_sample_data(series: Series) -> dict[str, Any]:
    """The built-in sample of the series' trigger event (a cart for "Checkout Started"), or {}."""
    name = trigger_event_name(series)
    sample = next((s for s in SAMPLE_EVENTS.values() if name and s.name == name), None)
    return dict(sample.properties) if sample is not None else {}


def _entry_of(workspace: Workspace, series: Series, contact: Contact) -> tuple[dict[str, Any], str]:
    entry = (
        Enrollment.objects.filter(workspace=workspace, series=series, contact=contact)
        .order_by("-id")
        .values_list("entry_data", flat=True)
        .first()
    )
    if isinstance(entry, dict) and entry:
        return entry, _("their last entry into this series")
    name = trigger_event_name(series)
    if name:
        for event in content_selectors.sample_events(workspace=workspace, contact=contact):
            if event.name == name and isinstance(event.properties, dict):
                return dict(event.properties), _("their last “%(event)s”") % {"event": name}
    sample = trigger_sample_data(series)
    return sample, (_("a sample “%(event)s”") % {"event": name}) if sample else ""


def sample_person(*, workspace: Workspace, series: Series, contact_id: int | None) -> SamplePerson:
    """The chosen contact of the workspace; without a choice the newest entrant of the series,
    else the newest contact, else the built-in sample person. Raises Contact.DoesNotExist
    for an id that is not a contact of this workspace."""
    if contact_id is None:
        contact_id = (
            Enrollment.objects.filter(workspace=workspace, series=series)
            .order_by("-id")
            .values_list("contact_id", flat=True)
            .first()
        )
    if contact_id is None:
        newest = content_selectors.sample_contacts(workspace=workspace)[:1]
        contact_id = newest[0].pk if newest else None
    if contact_id is None:
        sample = trigger_sample_data(series)
        source = _("a sample “%(event)s”") % {"event": trigger_event_name(series)} if sample else ""
        return SamplePerson(dict(SAMPLE_CONTACT), None, str(SAMPLE_CONTACT["email"]), sample, source)
    contact = content_selectors.sample_contact(workspace=workspace, contact_id=contact_id)
    if contact is None:
        raise Contact.DoesNotExist
    event, source = _entry_of(workspace, series, contact)
    return SamplePerson(contact_as_dict(contact), contact.pk, contact.email, event, source)


def sample_people(*, workspace: Workspace, series: Series, chosen: SamplePerson) -> list[tuple[int, str]]:
    """Whom the panel offers: the series' newest entrants, then the newest contacts; the chosen
    person first."""
    entrants = list(
        Enrollment.objects.filter(workspace=workspace, series=series)
        .order_by("-id")
        .values_list("contact_id", "contact__email")[:SAMPLE_PEOPLE]
    )
    people: dict[int, str] = {}
    if chosen.contact_id is not None:
        people[chosen.contact_id] = chosen.label
    for contact_id, email in entrants:
        people.setdefault(contact_id, email)
    for contact in content_selectors.sample_contacts(workspace=workspace):
        if len(people) >= SAMPLE_PEOPLE:
            break
        people.setdefault(contact.pk, contact.email)
    return list(people.items())


def email_preview(
    *, workspace: Workspace, series: Series, template: EmailTemplate, subject: str, person: SamplePerson
) -> EmailPreview:
    """The template as the step would send it to `person`: its subject replaced by the step's
    (when given), the entry data as `event`."""
    context = email_context(workspace=workspace, contact=person.contact, event=person.event, urls=PREVIEW_URLS)
    if person.contact_id is None:
        context["recommended_products"] = SAMPLE_RECOMMENDATIONS
    message_class = message_class_of(series, template)
    label = str(MessageClass(message_class).label) if message_class in MessageClass.values else message_class
    try:
        rendered = render_email(template, context, subject=subject.strip())
    except TemplateProblems as problems:
        return EmailPreview(template, person, None, " ".join(str(p) for p in problems.problems), label)
    except TemplateProblem as problem:
        return EmailPreview(template, person, None, str(problem), label)
    return EmailPreview(template, person, rendered, "", label)


def step_webhook_test(*, workspace: Workspace, series: Series, step_key: str, url: str) -> webhooks.WebhookTestResult:
    """A test call of the webhook step `step_key` of the draft (or live version) to `url` (the
    URL being typed; empty: the step's own), with a sample body signed by the series' secret.
    Raises ValidationError when there is no such step or the URL would not be saved."""
    version = selectors.series_latest_version(series=series)
    step = version.step(step_key) if version is not None else None
    if step is None or step.get("type") != "webhook":
        raise ValidationError({"step": [_("This series has no webhook step %(key)s.") % {"key": step_key}]})
    url = url.strip() or str(step.get("url") or "")
    errors = RuleErrors()
    STEP_KINDS["webhook"].clean({"url": url}, CleanContext(workspace), "step", errors)
    errors.raise_if_any()
    body = webhooks.webhook_test_body(
        series_id=series.pk, series_name=series.name, step_key=step_key, data=trigger_sample_data(series)
    )
    return webhooks.webhook_test_call(url=url, secret=series.webhook_secret, body=body)
