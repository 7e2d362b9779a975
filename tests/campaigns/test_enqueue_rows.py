"""Queueing many messages of different sources at once (a tick of series steps): one statement,
idempotent by (source, contact), each row's own template, data, priority, due time and
subject; other workspaces' contacts, templates and lists refused."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from audiences.models import Contact, MailingList
from campaigns.content.rendering import subject_problem
from campaigns.delivery.sender import messages_send_due
from campaigns.delivery.services import QueuedMessage, messages_enqueue_rows
from campaigns.models import EmailTemplate, Message, MessageClass, MessageSource, SendPriority
from campaigns.selectors import message_preview
from esp.models import OutboxMessage, Workspace

MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>{{ event.cart_id }}</mj-text>"
    "</mj-column></mj-section></mj-body></mjml>"
)


def template(workspace: Workspace, name: str = "T") -> EmailTemplate:
    return EmailTemplate.objects.create(workspace=workspace, name=name, subject="Template subject", mjml=MJML)


def person(workspace: Workspace, address: str, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, email=address, **fields)


def queued(contact: Contact, tpl: EmailTemplate, key: str, **fields: Any) -> QueuedMessage:
    row = QueuedMessage(
        contact_id=contact.pk,
        source=str(MessageSource.step(contact.pk, key)),
        template_id=tpl.pk,
        message_class=MessageClass.MARKETING,
    )
    return replace(row, **fields)


@pytest.mark.django_db
def test_rows_of_many_sources_are_queued_once_each_and_found_again(
    acme: Workspace, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ann = person(acme, "ann@example.com")
    bob = person(acme, "bob@example.com")
    welcome, cart = template(acme, "Welcome"), template(acme, "Cart")
    later = clock.now() + dt.timedelta(hours=4)
    rows = [
        queued(ann, welcome, "w1", data={"event": {"cart_id": "c-1"}}, smart_sending=True),
        queued(bob, cart, "c1", priority=SendPriority.PROMOTIONAL, due_at=later, subject_override="Yours"),
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        made = messages_enqueue_rows(workspace=acme, rows=rows)
    assert len(callbacks) == 1  # a drain, since the first row is due now

    assert set(made) == {rows[0].source, rows[1].source}
    first, second = Message.objects.get(pk=made[rows[0].source]), Message.objects.get(pk=made[rows[1].source])
    assert (first.contact_id, first.to_email, first.template_id) == (ann.pk, ann.email, welcome.pk)
    assert first.state == "queued"
    assert (first.priority, first.smart_sending, first.due_at, first.data) == (
        SendPriority.TRIGGERED,
        True,
        clock.now(),
        {"event": {"cart_id": "c-1"}},
    )
    assert (second.priority, second.smart_sending, second.due_at, second.subject_override) == (
        SendPriority.PROMOTIONAL,
        False,
        later,
        "Yours",
    )

    # A re-run tick (and one row more) finds what it made, makes only the new one.
    third = queued(ann, cart, "c2", due_at=later)
    with django_capture_on_commit_callbacks() as callbacks:
        again = messages_enqueue_rows(workspace=acme, rows=[*rows, third])
    assert {key: again[key] for key in made} == made
    assert Message.objects.filter(workspace=acme).count() == 3
    assert len(callbacks) == 1

    with django_capture_on_commit_callbacks() as callbacks:
        messages_enqueue_rows(workspace=acme, rows=[queued(bob, cart, "c3", due_at=later)])
    assert callbacks == []  # nothing due: the beat tick starts the drain when it is


@pytest.mark.django_db
@pytest.mark.parametrize("foreign", ["contact", "template", "mailing_list"])
def test_another_workspaces_contact_template_or_list_is_refused(
    acme: Workspace, globex: Workspace, foreign: str
) -> None:
    ann = person(acme, "ann@example.com")
    tpl = template(acme)
    mine = MailingList.objects.create(workspace=acme, name="News")
    theirs = {
        "contact": {"contact_id": person(globex, "gus@example.com").pk},
        "template": {"template_id": template(globex).pk},
        "mailing_list": {"mailing_list_id": MailingList.objects.create(workspace=globex, name="News").pk},
    }[foreign]
    good = queued(ann, tpl, "ok", mailing_list_id=mine.pk)
    bad = QueuedMessage(
        **{
            "contact_id": ann.pk,
            "source": "step:1:bad",
            "template_id": tpl.pk,
            "message_class": MessageClass.MARKETING,
            **theirs,
        }
    )
    with pytest.raises(ValueError, match=foreign.replace("_", " ")):
        messages_enqueue_rows(workspace=acme, rows=[good, bad])
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change", [{"message_class": "newsletter"}, {"priority": 15}, {"source": "step:1:same"}], ids=str
)
def test_bad_rows_are_refused(acme: Workspace, change: dict[str, Any]) -> None:
    ann = person(acme, "ann@example.com")
    tpl = template(acme)
    rows = [queued(ann, tpl, "a", source="step:1:same"), queued(ann, tpl, "b", **change)]
    with pytest.raises(ValueError):
        messages_enqueue_rows(workspace=acme, rows=rows)
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_subject_override_is_personalised_and_shown_as_sent(acme: Workspace) -> None:
    ann = person(acme, "ann@example.com", first_name="Ann")
    tpl = template(acme)
    override = queued(ann, tpl, "o", subject_override="{{ contact.first_name }}, your cart {{ event.cart_id }}")
    plain = queued(ann, tpl, "p")
    made = messages_enqueue_rows(
        workspace=acme,
        rows=[
            replace(override, data={"event": {"cart_id": "c-9"}}),
            plain,
        ],
    )

    messages_send_due()

    subjects = sorted(OutboxMessage.objects.filter(workspace=acme).values_list("subject", flat=True))
    assert subjects == ["Ann, your cart c-9", "Template subject"]
    sent = Message.objects.get(pk=made[override.source])
    assert sent.subject == "Ann, your cart c-9"
    preview = message_preview(workspace=acme, message=sent)
    assert preview is not None and preview.subject == "Ann, your cart c-9"


def test_a_subject_override_is_checked_like_a_template_subject() -> None:
    assert subject_problem("Hi {{ contact.first_name }}") is None
    assert subject_problem("{% load static %}Hi") is not None
    assert subject_problem("{% if contact.first_name %}Hi") is not None
