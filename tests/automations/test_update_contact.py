"""The update-contact step: tags, fields and lists changed through audiences' own write paths,
for the whole group at once, with consent recorded and the hooks fired as for a member's action."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audiences import hooks
from audiences.models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    CustomField,
    FieldType,
    MailingList,
    Subscription,
    SubscriptionStatus,
)
from automations.models import Enrollment, TraceOutcome
from automations.services import SeriesInput, series_create
from automations.steps import STEP_KINDS
from esp.models import OutboxMessage, Workspace
from tests.automations.series_helpers import contact, live_series, outcomes, track

pytestmark = pytest.mark.usefixtures("clock")


def test_tag_then_untag_for_the_whole_group(acme: Workspace, globex: Workspace) -> None:
    live_series(
        acme,
        [
            {"key": "vip", "type": "update_contact", "action": "tag", "tag": "vip", "next": "old"},
            {"key": "old", "type": "update_contact", "action": "untag", "tag": "newbie"},
        ],
    )
    ann = contact(acme, "ann@example.com", tags=["newbie"])
    bob = contact(acme, "bob@example.com")
    other = contact(globex, "ann@example.com", tags=["newbie"])
    track(ann, "Signed Up")
    track(bob, "Signed Up")
    ann.refresh_from_db()
    bob.refresh_from_db()
    other.refresh_from_db()
    assert ann.tags == ["vip"]
    assert bob.tags == ["vip"]
    assert other.tags == ["newbie"]
    enrollment = Enrollment.objects.get(contact=ann)
    assert outcomes(enrollment) == [
        ("", TraceOutcome.ENTERED, ""),
        ("vip", TraceOutcome.UPDATED, ""),
        ("old", TraceOutcome.UPDATED, ""),
        ("", TraceOutcome.COMPLETED, ""),
    ]


def test_set_a_field_and_a_custom_field_checked_by_type(acme: Workspace) -> None:
    CustomField.objects.create(workspace=acme, key="plan", label="Plan", type=FieldType.CHOICE, choices=["gold"])
    CustomField.objects.create(workspace=acme, key="renews_on", label="Renews on", type=FieldType.DATE)
    live_series(
        acme,
        [
            {
                "key": "city",
                "type": "update_contact",
                "action": "set",
                "field": "city",
                "value": "Lyon",
                "next": "plan",
            },
            {"key": "plan", "type": "update_contact", "action": "set", "field": "plan", "value": "gold", "next": "d"},
            {"key": "d", "type": "update_contact", "action": "set", "field": "renews_on", "value": "2027-03-01"},
        ],
    )
    cat = contact(acme, "cat@example.com", city="Paris", first_name="Cat", attributes={"note": "kept"})
    track(cat, "Signed Up")
    cat.refresh_from_db()
    assert cat.city == "Lyon"
    assert cat.first_name == "Cat"  # fields the step does not name stay as they are
    assert cat.attributes == {"note": "kept", "plan": "gold", "renews_on": "2027-03-01"}

    with pytest.raises(ValidationError) as caught:
        series_create(
            workspace=acme,
            data=SeriesInput(
                name="Bad values",
                trigger={"type": "api"},
                steps={"steps": [
                    {"key": "a", "type": "update_contact", "action": "set", "field": "plan", "value": "silver",
                     "next": "b"},
                    {"key": "b", "type": "update_contact", "action": "set", "field": "birth_date", "value": "soon",
                     "next": "c"},
                    {"key": "c", "type": "update_contact", "action": "set", "field": "email", "value": "x@y.z",
                     "next": "d"},
                    {"key": "d", "type": "update_contact", "action": "shout"},
                ]},
            ),
        )  # fmt: skip
    errors = caught.value.message_dict
    assert set(errors) >= {"steps[a].value", "steps[b].value", "steps[c].field", "steps[d].action"}


def test_subscribe_and_unsubscribe_record_consent_and_fire_the_hooks(
    acme: Workspace, django_capture_on_commit_callbacks: Any, run_tasks_now: None
) -> None:
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    vip = MailingList.objects.create(workspace=acme, name="VIP", double_opt_in=False)
    asked = MailingList.objects.create(workspace=acme, name="Asked", double_opt_in=True)
    dan = contact(acme, "dan@example.com")
    Subscription.objects.create(workspace=acme, contact=dan, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED)
    live_series(
        acme,
        [
            {"key": "join", "type": "update_contact", "action": "subscribe", "list": vip.pk, "next": "ask"},
            {"key": "ask", "type": "update_contact", "action": "subscribe", "list": asked.pk, "next": "leave"},
            {"key": "leave", "type": "update_contact", "action": "unsubscribe", "list": news.pk},
        ],
    )
    heard: dict[str, list[Any]] = {"subscribed": [], "unsubscribed": []}
    hooks.contacts_subscribed.subscribe(heard["subscribed"].append)
    hooks.contacts_unsubscribed.subscribe(heard["unsubscribed"].append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            track(dan, "Signed Up")
    finally:
        hooks.contacts_subscribed.unsubscribe(heard["subscribed"].append)
        hooks.contacts_unsubscribed.unsubscribe(heard["unsubscribed"].append)
    assert Subscription.objects.get(contact=dan, mailing_list=vip).status == SubscriptionStatus.SUBSCRIBED
    assert Subscription.objects.get(contact=dan, mailing_list=news).status == SubscriptionStatus.UNSUBSCRIBED
    # A double opt-in list asks the contact: pending, and a confirmation mail goes.
    assert Subscription.objects.get(contact=dan, mailing_list=asked).status == SubscriptionStatus.PENDING
    assert OutboxMessage.objects.filter(to=["dan@example.com"], subject__contains="Asked").count() == 1
    records = {(r.mailing_list_id, r.action, r.source) for r in ConsentRecord.objects.filter(contact=dan)}
    assert records == {
        (vip.pk, ConsentAction.SUBSCRIBED, ConsentSource.SERIES),
        (asked.pk, ConsentAction.SUBSCRIBED, ConsentSource.SERIES),
        (news.pk, ConsentAction.UNSUBSCRIBED, ConsentSource.SERIES),
    }
    assert [(p.contact_ids, p.mailing_list_id) for p in heard["subscribed"]] == [((dan.pk,), vip.pk)]
    assert [(p.contact_ids, p.mailing_list_id) for p in heard["unsubscribed"]] == [((dan.pk,), news.pk)]


def test_a_deleted_list_is_skipped_with_a_reason(acme: Workspace) -> None:
    gone = MailingList.objects.create(workspace=acme, name="Gone", double_opt_in=False)
    live_series(acme, [{"key": "join", "type": "update_contact", "action": "subscribe", "list": gone.pk}])
    gone.delete()
    eve = contact(acme, "eve@example.com")
    track(eve, "Signed Up")
    enrollment = Enrollment.objects.get(contact=eve)
    assert ("join", TraceOutcome.SKIPPED, "") in outcomes(enrollment)
    assert enrollment.state == "completed"


def test_describe_says_what_the_step_does() -> None:
    describe = STEP_KINDS["update_contact"].describe
    assert describe({"action": "tag", "tag": "vip"}) == "add the tag vip"
    assert describe({"action": "set", "field": "city", "value": "Lyon"}) == "set city to Lyon"
    assert describe({"action": "unsubscribe", "list": 4}) == "unsubscribe from list #4"
