"""The notify step: an internal mail to an address or the workspace's owners, with the contact's
details, sent after the run commits through the account mail (the outbox here); the enrollment
goes on at once, a re-delivered task mails nobody twice, and a crowd makes one summary."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from automations.models import Enrollment, EnrollmentState, TraceOutcome
from automations.notify import MAX_SINGLE, notifications_send
from automations.services import SeriesInput, enrollment_create, series_create
from automations.steps import STEP_KINDS
from esp.models import OutboxMessage, Role, User, Workspace
from tests.automations.series_helpers import contact, live_series, outcomes, tick, track
from tests.factories import member

pytestmark = pytest.mark.usefixtures("clock", "run_tasks_now")


def test_the_owners_hear_of_a_vip_order_with_the_contacts_details(
    acme: Workspace, acme_owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    member(acme, Role.MARKETER, email="marketer@acme.test")
    live_series(
        acme,
        [{"key": "tell", "type": "notify", "subject": "VIP placed a big order", "text": "Call them today."}],
        trigger={"type": "event", "event": "Order Completed", "where": [
            {"property": "total", "operator": "gt", "value": 500}
        ]},
    )  # fmt: skip
    ann = contact(acme, "ann@example.com", first_name="Ann", last_name="Lee", external_id="u-9")
    with django_capture_on_commit_callbacks(execute=True):
        track(ann, "Order Completed", total=900, order_id="o-1")
    (mail,) = OutboxMessage.objects.all()
    assert mail.to == ["owner@acme.test"]  # the owners, not every member
    assert mail.workspace_id == acme.pk
    assert mail.subject == "VIP placed a big order — Ann Lee"
    for text in ("Call them today.", "ann@example.com", "u-9", f"/audience/contacts/{ann.pk}/", "total: 900"):
        assert text in mail.text_body
    enrollment = Enrollment.objects.get(contact=ann)
    assert enrollment.state == EnrollmentState.COMPLETED
    assert ("tell", TraceOutcome.NOTIFIED, "") in outcomes(enrollment)

    # The same task delivered again mails nobody twice.
    notifications_send(version_id=enrollment.version_id, step_key="tell", enrollment_ids=[enrollment.pk])
    assert OutboxMessage.objects.count() == 1


def test_an_address_and_a_crowd_makes_one_summary(acme: Workspace, django_capture_on_commit_callbacks: Any) -> None:
    series = live_series(
        acme,
        [{"key": "tell", "type": "notify", "to": "sales@shop.example", "subject": "New lead"}],
        trigger={"type": "api"},
    )
    people = [contact(acme, f"p{i}@example.com") for i in range(MAX_SINGLE + 3)]
    for person in people:
        enrollment_create(workspace=acme, series_id=series.pk, contact=person)
    with django_capture_on_commit_callbacks(execute=True):
        assert tick() == len(people)  # one group, one run of the step
    (summary,) = OutboxMessage.objects.all()
    assert summary.to == ["sales@shop.example"]
    assert summary.subject == f"New lead — {len(people)} contacts"
    assert all(person.email in summary.text_body for person in people)


def test_the_step_is_checked_and_described(acme: Workspace) -> None:
    with pytest.raises(ValidationError) as caught:
        series_create(
            workspace=acme,
            data=SeriesInput(
                name="Bad notify",
                trigger={"type": "api"},
                steps={"steps": [{"key": "a", "type": "notify", "to": "not an address", "subject": ""}]},
            ),
        )
    assert set(caught.value.message_dict) == {"steps[a].to", "steps[a].subject"}
    describe = STEP_KINDS["notify"].describe
    assert describe({"subject": "VIP order"}) == "notify the workspace's owners: VIP order"
    assert describe({"to": "a@b.example", "subject": "Lead"}) == "notify a@b.example: Lead"
