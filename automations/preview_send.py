"""Send every email of a series to a member of the team: each send step's template, in the order
the series page draws the steps (automations.tree: down each column, "yes" before "no"),
personalised for a chosen contact (or the editor's sample person) and event, a few minutes apart.

Each email is a test of the editor's kind (campaigns.delivery.services.message_send_test): a
Message with a `test:` source and no contact, sent through the real road and provider when it
falls due (its `due_at`: the send loop's own schedule, no Celery countdown). No trace row and
no step source, so the series' counts never see it; no contact's data or enrollment changes.
It goes only to a member's address, and an address on the suppression list is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from audiences.models import Contact, Event, EventType, normalise_email
from automations.models import Enrollment, Series, SeriesKind, SeriesVersion
from automations.tree import Path, step_tree
from campaigns.content.starters import SAMPLE_CONTACT, SAMPLE_EVENTS
from campaigns.delivery.services import message_send_test
from campaigns.models import EmailTemplate, Message, MessageClass
from esp import clock
from esp.models import Membership, Workspace

MAX_MINUTES_APART = 60

# Where the emails' `event` comes from.
EVENT_AUTO = "auto"  # the contact's latest enrollment in this series, else its latest trigger event, else a sample
EVENT_ENROLLMENT = "enrollment"
EVENT_TRIGGER = "trigger"
EVENT_NONE = "none"
EVENT_SOURCES = (EVENT_AUTO, EVENT_ENROLLMENT, EVENT_TRIGGER, EVENT_NONE)


@dataclass(frozen=True)
class PreviewSend:
    """What was queued: one test message per send step, in order."""

    messages: list[Message]
    step_keys: list[str]
    event: dict[str, Any]


def send_steps_in_order(steps: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The version's send steps in the order the tree draws them: a column top to bottom, a
    branching step's columns left to right ("yes" before "no", a split's branches in order),
    then the steps no path reaches, which the page draws last."""
    tree = step_tree(steps)

    def walk(path: Path) -> Iterator[dict[str, Any]]:
        for node in path.nodes:
            if node.step.get("type") == "send":
                yield node.step
            for branch in node.branches:
                yield from walk(branch.path)

    found = list(walk(tree.root))
    for path in tree.unreached:
        found += walk(path)
    return found


def _member_address(workspace: Workspace, to_email: str) -> str:
    """The address, if it is a team member's: tests of a series go to the team only, never to
    an address that could be a customer's (they skip caps, quiet hours and unsubscribes)."""
    address = normalise_email(to_email)
    members = Membership.objects.filter(workspace=workspace, user__email__iexact=address)
    if not members.exists():
        raise ValidationError(
            {"to_email": _("Tests go to the team only: give the address of a member of this workspace.")}
        )
    return address


def _latest_trigger_event(workspace: Workspace, series: Series, contact: Contact) -> dict[str, Any] | None:
    name = (series.trigger or {}).get("event") if (series.trigger or {}).get("type") == "event" else None
    if not name:
        return None
    event = (
        Event.objects.filter(workspace=workspace, contact=contact, type=EventType.TRACK, name=name)
        .order_by("-occurred_at", "-id")
        .only("properties")
        .first()
    )
    return dict(event.properties) if event is not None and isinstance(event.properties, dict) else None


def _latest_entry_data(workspace: Workspace, series: Series, contact: Contact) -> dict[str, Any] | None:
    enrollment = (
        Enrollment.objects.filter(workspace=workspace, series=series, contact=contact)
        .order_by("-id")
        .only("entry_data")
        .first()
    )
    return dict(enrollment.entry_data) if enrollment is not None and isinstance(enrollment.entry_data, dict) else None


def _sample_event(series: Series) -> dict[str, Any]:
    """The editor's built-in sample of the trigger's event, when it has one ("Checkout Started")."""
    name = (series.trigger or {}).get("event")
    sample = next((s for s in SAMPLE_EVENTS.values() if s.name == name), None)
    return dict(sample.properties) if sample is not None else {}


def preview_event(*, workspace: Workspace, series: Series, contact: Contact | None, source: str) -> dict[str, Any]:
    """The `event` the emails are rendered with."""
    if source == EVENT_NONE:
        return {}
    if contact is None:
        if source in (EVENT_ENROLLMENT, EVENT_TRIGGER):
            raise ValidationError({"event_data": _("Choose a contact to use their event data.")})
        return _sample_event(series)
    if source == EVENT_ENROLLMENT:
        data = _latest_entry_data(workspace, series, contact)
        if data is None:
            raise ValidationError({"event_data": _("This contact has never entered this series.")})
        return data
    if source == EVENT_TRIGGER:
        data = _latest_trigger_event(workspace, series, contact)
        if data is None:
            raise ValidationError({"event_data": _("This contact has no event that triggers this series.")})
        return data
    return (
        _latest_entry_data(workspace, series, contact)
        or _latest_trigger_event(workspace, series, contact)
        or _sample_event(series)
    )


def series_send_to_me(
    *,
    workspace: Workspace,
    series: Series,
    version: SeriesVersion,
    to_email: str,
    contact: Contact | None,
    event_source: str = EVENT_AUTO,
    minutes_apart: int = 2,
) -> PreviewSend:
    """Queue every send step of `version` to `to_email` (a member's), the first now and each
    next `minutes_apart` later. All or nothing: a refused address or a deleted template queues
    none."""
    if series.workspace_id != workspace.pk or version.series_id != series.pk:
        raise ValueError("series and version belong elsewhere")
    if contact is not None and contact.workspace_id != workspace.pk:
        raise ValueError("contact belongs to another workspace")
    if event_source not in EVENT_SOURCES:
        raise ValidationError({"event_data": _("Unknown source of event data.")})
    if not 0 <= minutes_apart <= MAX_MINUTES_APART:
        raise ValidationError({"minutes_apart": _("Give 0 to %(n)d minutes.") % {"n": MAX_MINUTES_APART}})
    address = _member_address(workspace, to_email)
    sends = send_steps_in_order(version.steps)
    if not sends:
        raise ValidationError(_("This version has no email to send."))
    templates = {
        t.pk: t for t in EmailTemplate.objects.in_workspace(workspace).filter(pk__in=[s.get("template") for s in sends])
    }
    gone = [s["key"] for s in sends if s.get("template") not in templates]
    if gone:
        raise ValidationError(
            _("The email template of step %(steps)s is gone: fix the series first.") % {"steps": ", ".join(gone)}
        )
    event = preview_event(workspace=workspace, series=series, contact=contact, source=event_source)
    # The class each step sends with (a transactional series' mail is transactional).
    transactional = series.kind == SeriesKind.TRANSACTIONAL
    start = clock.now()
    queued = []
    with transaction.atomic():
        for index, step in enumerate(sends):
            template = templates[step["template"]]
            queued.append(
                message_send_test(
                    workspace=workspace,
                    template=template,
                    to_email=address,
                    sample_contact=contact,
                    # The editor's sample person when no contact is chosen, as its own test does.
                    sample_data=None if contact is not None else SAMPLE_CONTACT,
                    event=event,
                    due_at=start + dt.timedelta(minutes=minutes_apart * index),
                    subject_override=step.get("subject", ""),
                    message_class=MessageClass.TRANSACTIONAL if transactional else template.message_class,
                )
            )
    return PreviewSend(messages=queued, step_keys=[s["key"] for s in sends], event=event)
