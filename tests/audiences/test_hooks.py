"""The hook registry of audiences (audiences.hooks): a subscriber, registered here as a later
layer would in its AppConfig.ready(), hears of stored events, segment membership changes and
unsubscribed, suppressed or erased contacts — after commit, in batches, from every write path
(campaigns' unsubscribe link and webhooks included), and never of a rolled-back write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from audiences import gdpr, hooks, services
from audiences.bulk import contacts_bulk_apply
from audiences.ingest import events_ingest
from audiences.models import Contact, MailingList, SuppressionReason
from audiences.segments.membership import segment_refresh
from audiences.segments.services import segment_save
from campaigns.events import message_event_record
from campaigns.models import MessageEventType
from campaigns.tracking.tokens import message_token
from esp.models import Workspace
from tests.factories import MessageFactory

# Real commits: the hooks wait for them, and a test transaction never commits.
pytestmark = pytest.mark.django_db(transaction=True)

HOOKS = {
    "events": hooks.events_stored,
    "segments": hooks.segment_membership_changed,
    "unsubscribed": hooks.contacts_unsubscribed,
    "suppressed": hooks.contacts_suppressed,
    "erased": hooks.contacts_erased,
}


@pytest.fixture
def heard() -> Iterator[dict[str, list[Any]]]:
    """What each hook delivered, in order; the subscribers are gone after the test."""
    received: dict[str, list[Any]] = {name: [] for name in HOOKS}
    subscribers = {name: received[name].append for name in HOOKS}
    for name, hook in HOOKS.items():
        hook.subscribe(subscribers[name])
    yield received
    for name, hook in HOOKS.items():
        hook.unsubscribe(subscribers[name])


def contact(workspace: Workspace, name: str, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, email=f"{name}@example.com", **fields)


def test_events_stored_after_processing_in_batches(
    acme: Workspace, globex: Workspace, heard: dict[str, list[Any]], run_tasks_now: None, monkeypatch: Any
) -> None:
    monkeypatch.setattr(hooks, "BATCH_SIZE", 2)
    ann = contact(acme, "ann", external_id="u1")
    items = [{"type": "track", "userId": "u1", "event": "Viewed", "messageId": f"m{i}"} for i in range(5)]
    with transaction.atomic():
        result = events_ingest(workspace=acme, items=items)
        assert heard["events"] == []  # not before commit
    # The task ran after commit (inline here), merged and refreshed, then the hook fired.
    assert [batch.event_ids for batch in heard["events"]] == [
        tuple(result.event_ids[0:2]),
        tuple(result.event_ids[2:4]),
        tuple(result.event_ids[4:5]),
    ]
    assert [batch.contact_ids for batch in heard["events"]] == [(ann.pk,), (), ()]
    assert {batch.workspace_id for batch in heard["events"]} == {acme.pk}

    events_ingest(workspace=acme, items=items)  # a replay stores nothing, so nothing is heard
    assert len(heard["events"]) == 3


def test_segment_membership_changed_names_who_entered_and_left(
    acme: Workspace, heard: dict[str, list[Any]], run_tasks_now: None
) -> None:
    rules = {"conditions": [{"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"}]}
    anna, ben = contact(acme, "anna", country="DE"), contact(acme, "ben", country="DE")
    segment = segment_save(workspace=acme, name="Germans", rules=rules)  # refreshed after commit
    assert [(b.segment_id, b.entered, b.exited) for b in heard["segments"]] == [
        (segment.pk, tuple(sorted([anna.pk, ben.pk])), ())
    ]
    Contact.objects.filter(pk=ben.pk).update(country="FR")
    segment_refresh(segment_id=segment.pk)
    assert heard["segments"][-1].exited == (ben.pk,) and heard["segments"][-1].entered == ()
    segment_refresh(segment_id=segment.pk)  # nothing changed: nothing heard
    assert len(heard["segments"]) == 2


def test_unsubscribe_from_a_list_and_in_bulk(acme: Workspace, heard: dict[str, list[Any]], monkeypatch: Any) -> None:
    monkeypatch.setattr(hooks, "BATCH_SIZE", 2)
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    people = [contact(acme, f"p{i}") for i in range(3)]
    admin = services.ConsentContext(source="admin")
    for person in people:
        services.subscription_subscribe(workspace=acme, contact=person, mailing_list=news, context=admin)
    services.subscription_unsubscribe(workspace=acme, contact=people[0], mailing_list=news, context=admin)
    assert [(b.contact_ids, b.mailing_list_id) for b in heard["unsubscribed"]] == [((people[0].pk,), news.pk)]

    ids = [p.pk for p in people]
    contacts_bulk_apply(workspace=acme, contact_ids=ids, action="unsubscribe", value=str(news.pk))
    # Only the two still subscribed changed; they come in one batch of two.
    assert [(b.contact_ids, b.mailing_list_id) for b in heard["unsubscribed"][1:]] == [
        ((people[1].pk, people[2].pk), news.pk)
    ]


def test_unsubscribe_link_of_campaigns_fires_the_audiences_hooks(acme: Workspace, heard: dict[str, list[Any]]) -> None:
    ann = contact(acme, "ann")
    message = MessageFactory(workspace=acme, contact=ann)  # no list: the link unsubscribes from all
    response = Client().post(f"/e/u/{message_token(message.pk)}")
    assert response.status_code in (200, 302), response.content
    assert [(b.contact_ids, b.mailing_list_id) for b in heard["unsubscribed"]] == [((ann.pk,), None)]
    assert [(b.emails, b.contact_ids, b.reason) for b in heard["suppressed"]] == [
        (("ann@example.com",), (ann.pk,), SuppressionReason.UNSUBSCRIBED)
    ]


def test_suppressed_by_a_webhook_bounce(acme: Workspace, globex: Workspace, heard: dict[str, list[Any]]) -> None:
    ann = contact(acme, "ann")
    contact(globex, "ann")  # the same address elsewhere is not this workspace's contact
    message = MessageFactory(workspace=acme, contact=ann)
    message_event_record(message=message, type=MessageEventType.BOUNCED, occurred_at=None, event_key="b1")
    assert [(b.workspace_id, b.emails, b.contact_ids, b.reason) for b in heard["suppressed"]] == [
        (acme.pk, ("ann@example.com",), (ann.pk,), SuppressionReason.HARD_BOUNCE)
    ]
    assert heard["unsubscribed"] == []
    # Already suppressed: a second bounce changes nothing and is not heard again.
    message_event_record(message=message, type=MessageEventType.BOUNCED, occurred_at=None, event_key="b2")
    assert len(heard["suppressed"]) == 1


def test_erased_by_gdpr_and_by_delete(acme: Workspace, heard: dict[str, list[Any]]) -> None:
    ann, ben, cid, dan = (contact(acme, name) for name in ("ann", "ben", "cid", "dan"))
    gdpr.contact_erase(workspace=acme, contact_id=ann.pk)
    services.contact_delete(workspace=acme, contact_id=ben.pk)
    contacts_bulk_apply(workspace=acme, contact_ids=[cid.pk, dan.pk], action="delete")
    assert [b.contact_ids for b in heard["erased"]] == [(ann.pk,), (ben.pk,), (cid.pk, dan.pk)]
    assert heard["suppressed"] == []  # an erasure's suppression keeps no address to tell of


def test_nothing_is_heard_of_a_rolled_back_write(acme: Workspace, heard: dict[str, list[Any]]) -> None:
    ann, ben = contact(acme, "ann"), contact(acme, "ben")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.suppression_add(workspace=acme, email=ann.email, reason=SuppressionReason.MANUAL)
        gdpr.contact_erase(workspace=acme, contact_id=ben.pk)
        raise RuntimeError
    # A savepoint rolled back inside a transaction that commits: only the committed part.
    with transaction.atomic():
        try:
            with transaction.atomic():
                services.suppression_add(workspace=acme, email=ann.email, reason=SuppressionReason.MANUAL)
                raise RuntimeError
        except RuntimeError:
            pass
        services.suppression_add(workspace=acme, email=ben.email, reason=SuppressionReason.COMPLAINT)
    assert heard["erased"] == []
    assert [(b.emails, b.reason) for b in heard["suppressed"]] == [(("ben@example.com",), "complaint")]


def test_a_failing_subscriber_does_not_stop_the_others(acme: Workspace, heard: dict[str, list[Any]]) -> None:
    def broken(batch: hooks.ContactsErased) -> None:
        raise ValueError("a bug in a later layer")

    hooks.contacts_erased.subscribe(broken)
    try:
        ann = contact(acme, "ann")
        services.contact_delete(workspace=acme, contact_id=ann.pk)  # committed: no error reaches the writer
    finally:
        hooks.contacts_erased.unsubscribe(broken)
    assert [b.contact_ids for b in heard["erased"]] == [(ann.pk,)]
