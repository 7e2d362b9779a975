"""Series test helpers: a shop with templates, contacts, events delivered to the engine the way
the hooks deliver them, and time moved by the engine's clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from audiences.models import Contact, Event
from automations.engine.events import events_arrived
from automations.engine.runner import enrollments_run_all_due
from automations.models import Enrollment, Series, Trace
from automations.services import SeriesInput, series_create, series_publish
from campaigns.delivery.sender import messages_send_due
from campaigns.models import Message
from esp import clock as engine_clock
from esp.models import Workspace
from tests.factories import EventFactory


def contact(workspace: Workspace, email: str, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, email=email, **fields)


def track(person: Contact, name: str, at: dt.datetime | None = None, **properties: Any) -> Event:
    """Store an event and hand it to the engine as the hook does, then run what fell due."""
    event = EventFactory(contact=person, workspace=person.workspace, name=name, properties=properties,
                         occurred_at=at or engine_clock.now())  # fmt: skip
    due = events_arrived(workspace_id=person.workspace_id, event_ids=[event.pk])
    if due:
        enrollments_run_all_due(ids=due)
    return event


def tick() -> int:
    """The beat's tick at the clock's now."""
    return enrollments_run_all_due()


def live_series(workspace: Workspace, steps: list[dict[str, Any]], **settings: Any) -> Series:
    settings.setdefault("name", "Test series")
    settings.setdefault("trigger", {"type": "event", "event": "Signed Up"})
    series = series_create(workspace=workspace, data=SeriesInput(steps={"steps": steps}, **settings))
    series_publish(workspace=workspace, series_id=series.pk)
    series.refresh_from_db()
    return series


def messages(person: Contact) -> list[Message]:
    return list(Message.objects.filter(contact=person).order_by("id"))


def outcomes(enrollment: Enrollment) -> list[tuple[str, str, str]]:
    return [(t.step_key, t.outcome, t.branch) for t in Trace.objects.filter(enrollment=enrollment).order_by("id")]


def send_all() -> int:
    return messages_send_due()


def welcome_steps(templates: dict[str, Any]) -> list[dict[str, Any]]:
    """Welcome, two days, "ordered since entering?"; no: a coupon. The series pages' tests read it."""
    return [
        {"key": "welcome", "type": "send", "template": templates["welcome"].pk, "next": "pause"},
        {"key": "pause", "type": "wait", "amount": 2, "unit": "days", "next": "ordered"},
        {
            "key": "ordered",
            "type": "condition",
            "events_since_entry": [{"event": "Order Completed"}],
            "yes": None,
            "no": "coupon",
        },
        {"key": "coupon", "type": "send", "template": templates["coupon"].pk, "subject": "10 % off"},
    ]
