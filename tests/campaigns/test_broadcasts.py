"""Broadcasts: the audience and its live count, the snapshot (now, at a moment, at a wall-clock
time in each contact's zone across a DST change, spread over hours), pause / resume / cancel
that are exact, the beat's tick, and another workspace's lists, segments and templates refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audiences.models import Contact, MailingList, Segment, Subscription, SubscriptionStatus, Suppression, email_hash
from campaigns.broadcasts import services
from campaigns.broadcasts.audience import audience_count, recipients
from campaigns.broadcasts.services import BroadcastInput
from campaigns.models import Broadcast, BroadcastStatus, Message, MessageSource
from esp.models import Workspace
from tests.factories import EmailTemplateFactory

pytestmark = pytest.mark.usefixtures("clock")


def person(workspace: Workspace, email: str, lists: list[MailingList] = (), **fields: Any) -> Contact:  # type: ignore[assignment]
    contact = Contact.objects.create(workspace=workspace, email=email, **fields)
    for mailing_list in lists:
        Subscription.objects.create(
            workspace=workspace, contact=contact, mailing_list=mailing_list, status=SubscriptionStatus.SUBSCRIBED
        )
    return contact


@pytest.fixture
def news(acme: Workspace) -> MailingList:
    return MailingList.objects.create(workspace=acme, name="News")


def _broadcast(workspace: Workspace, **fields: Any) -> Broadcast:
    template = EmailTemplateFactory(workspace=workspace, name="Sale", subject="Sale −20 %")
    data = BroadcastInput(name="Autumn sale", template=template.pk, **fields)
    return services.broadcast_create(workspace=workspace, data=data)


def _messages(broadcast: Broadcast) -> dict[str, Message]:
    rows = Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk))).select_related("contact")
    return {m.contact.email: m for m in rows}  # type: ignore[union-attr]


def test_the_audience_and_its_count(acme: Workspace, news: MailingList) -> None:
    vip = MailingList.objects.create(workspace=acme, name="VIP")
    person(acme, "ann@example.com", [news])
    person(acme, "bob@example.com", [news, vip])  # excluded by the VIP list
    person(acme, "cat@example.com", [news], tags=["wholesale"])  # excluded by tag
    person(acme, "dan@example.com", [news])
    Suppression.objects.create(workspace=acme, email="dan@example.com", email_hash=email_hash("DAN@example.com "),
                               reason="complaint")  # fmt: skip
    person(acme, "eve@example.com", tags=["promo"])  # tagged in, but subscribed to nothing
    person(acme, "fay@example.com", [vip], tags=["promo"])  # tagged in, consent through another list
    broadcast = _broadcast(
        acme, include_lists=[news.pk], include_tags=["promo"], exclude_lists=[vip.pk], exclude_tags=["wholesale"]
    )
    # In: ann and dan (News), eve (tag); bob, cat and fay are excluded. Sent to a list, only its
    # members' subscription counts as consent: eve is tagged in but no member of News.
    count = audience_count(acme, broadcast)
    assert (count.matching, count.without_consent, count.suppressed, count.recipients) == (3, 1, 1, 1)
    assert list(recipients(acme, broadcast).values_list("email", flat=True)) == ["ann@example.com"]


def test_a_segment_audience_needs_a_subscription_to_any_list(acme: Workspace, news: MailingList) -> None:
    buyers = Segment.objects.create(
        workspace=acme,
        name="Berliners",
        rules={"match": "all", "negate": False, "conditions": [
            {"kind": "attribute", "field": "city", "operator": "eq", "value": "Berlin"}]},
    )  # fmt: skip
    person(acme, "ann@example.com", [news], city="Berlin")
    person(acme, "bob@example.com", city="Berlin")
    person(acme, "cat@example.com", [news], city="Paris")
    broadcast = _broadcast(acme, include_segments=[buyers.pk])
    assert list(recipients(acme, broadcast).values_list("email", flat=True)) == ["ann@example.com"]


def test_send_now_snapshots_one_message_per_recipient(acme: Workspace, news: MailingList, clock: Any) -> None:
    for name in ("ann", "bob"):
        person(acme, f"{name}@example.com", [news])
    broadcast = _broadcast(acme, include_lists=[news.pk], subject="Only today")
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.recipients == 2
    made = _messages(broadcast)
    assert sorted(made) == ["ann@example.com", "bob@example.com"]
    assert all(
        m.due_at == clock.now() and m.subject_override == "Only today" and m.priority == 10 for m in made.values()
    )
    with pytest.raises(ValidationError):
        services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)


def test_local_time_in_each_zone_across_a_dst_change(acme: Workspace, news: MailingList, clock: Any) -> None:
    acme.time_zone = "Europe/Moscow"
    acme.save()
    person(acme, "berlin@example.com", [news], time_zone="Europe/Berlin")
    person(acme, "ny@example.com", [news], time_zone="America/New_York")
    person(acme, "tokyo@example.com", [news], time_zone="Asia/Tokyo")
    person(acme, "nowhere@example.com", [news])  # the workspace's zone
    person(acme, "bogus@example.com", [news], time_zone="Mars/Olympus")  # not a zone: the workspace's
    # 29 March 2026: Europe moves its clocks forward at 01:00 UTC; New York moved on 8 March.
    clock.freeze(dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC))
    broadcast = _broadcast(acme, include_lists=[news.pk], send_mode="local", local_at=dt.datetime(2026, 3, 29, 9, 0))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    assert services.broadcasts_tick()["started"] == 0  # not yet 09:00 anywhere
    clock.freeze(dt.datetime(2026, 3, 28, 19, 0, tzinfo=dt.UTC))  # 09:00 in UTC+14
    assert services.broadcasts_tick()["started"] == 1
    due = {email: m.due_at for email, m in _messages(broadcast).items()}
    utc = dt.UTC
    assert due["berlin@example.com"] == dt.datetime(2026, 3, 29, 7, 0, tzinfo=utc)  # CEST, +2 since that night
    assert due["ny@example.com"] == dt.datetime(2026, 3, 29, 13, 0, tzinfo=utc)  # EDT, -4
    assert due["tokyo@example.com"] == dt.datetime(2026, 3, 29, 0, 0, tzinfo=utc)
    assert due["nowhere@example.com"] == due["bogus@example.com"] == dt.datetime(2026, 3, 29, 6, 0, tzinfo=utc)


def test_a_throttle_spreads_the_messages(acme: Workspace, news: MailingList, clock: Any) -> None:
    for n in range(4):
        person(acme, f"p{n}@example.com", [news])
    broadcast = _broadcast(acme, include_lists=[news.pk], throttle_hours=2)
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    offsets = sorted((m.due_at - clock.now()) for m in _messages(broadcast).values())
    assert offsets == [dt.timedelta(minutes=30 * n) for n in range(4)]


def test_pause_resume_and_cancel_are_exact(acme: Workspace, news: MailingList, clock: Any) -> None:
    for n in range(3):
        person(acme, f"p{n}@example.com", [news])
    broadcast = _broadcast(acme, include_lists=[news.pk], throttle_hours=3)
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    before = {e: m.due_at for e, m in _messages(broadcast).items()}
    taken = _messages(broadcast)["p0@example.com"]
    Message.objects.filter(pk=taken.pk).update(state="claimed")  # a worker holds this one
    assert services.broadcast_pause(workspace=acme, broadcast_id=broadcast.pk) == 2
    paused = {e: m.due_at for e, m in _messages(broadcast).items()}
    assert paused["p0@example.com"] == before["p0@example.com"]
    assert all(paused[e] > clock.now() + dt.timedelta(days=365 * 100) for e in ("p1@example.com", "p2@example.com"))
    assert services.broadcast_resume(workspace=acme, broadcast_id=broadcast.pk) == 2
    assert {e: m.due_at for e, m in _messages(broadcast).items()} == before
    assert services.broadcast_cancel(workspace=acme, broadcast_id=broadcast.pk) == 2
    states = {e: (m.state, m.reason) for e, m in _messages(broadcast).items()}
    assert states == {
        "p0@example.com": ("claimed", ""),
        "p1@example.com": ("skipped", "broadcast_cancelled"),
        "p2@example.com": ("skipped", "broadcast_cancelled"),
    }
    with pytest.raises(ValidationError):
        services.broadcast_resume(workspace=acme, broadcast_id=broadcast.pk)


def test_the_tick_starts_a_scheduled_broadcast_and_closes_a_finished_one(
    acme: Workspace, news: MailingList, clock: Any
) -> None:
    person(acme, "ann@example.com", [news])
    broadcast = _broadcast(acme, include_lists=[news.pk], send_mode="at", send_at=clock.now() + dt.timedelta(hours=1))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    assert services.broadcasts_tick() == {"started": 0, "finished": 0}
    clock.advance(hours=1)
    assert services.broadcasts_tick() == {"started": 1, "finished": 0}
    Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk))).update(state="sent")
    assert services.broadcasts_tick() == {"started": 0, "finished": 1}
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENT and broadcast.finished_at == clock.now()


def test_what_scheduling_needs_is_said(acme: Workspace, clock: Any) -> None:
    broadcast = services.broadcast_create(workspace=acme, data=BroadcastInput(name="Empty", send_mode="at"))
    with pytest.raises(ValidationError) as refused:
        services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    assert set(refused.value.message_dict) == {"template", "include_lists", "send_at"}


def test_another_workspaces_lists_and_templates_are_refused(acme: Workspace, globex: Workspace) -> None:
    theirs = MailingList.objects.create(workspace=globex, name="Theirs")
    template = EmailTemplateFactory(workspace=globex)
    with pytest.raises(ValidationError) as refused:
        services.broadcast_create(
            workspace=acme, data=BroadcastInput(name="x", include_lists=[theirs.pk], template=template.pk)
        )
    assert set(refused.value.message_dict) == {"include_lists", "template"}
    assert not Broadcast.objects.exists()


def test_the_snapshot_records_who_it_left_out_and_why(acme: Workspace, news: MailingList) -> None:
    person(acme, "ann@example.com", [news])
    person(acme, "dan@example.com", [news])
    Suppression.objects.create(workspace=acme, email="dan@example.com", email_hash=email_hash("dan@example.com"),
                               reason="hard_bounce")  # fmt: skip
    unsubscribed = person(acme, "eve@example.com")
    Subscription.objects.create(
        workspace=acme, contact=unsubscribed, mailing_list=news, status=SubscriptionStatus.UNSUBSCRIBED
    )
    broadcast = _broadcast(acme, include_lists=[news.pk])
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    broadcast.refresh_from_db()
    assert broadcast.recipients == 1 and sorted(_messages(broadcast)) == ["ann@example.com"]
    # eve left the list: she is no member of the audience at all; dan is, but suppressed.
    assert broadcast.excluded == {"no_consent": 0, "suppressed": 1}


def test_a_series_email_beats_a_broadcast_under_the_cap(acme: Workspace, news: MailingList) -> None:
    """Both due at once for the same contact with one marketing email a day allowed: the
    triggered one (priority 20) goes, the promotional broadcast is skipped for the cap."""
    from campaigns.delivery.sender import messages_send_due
    from campaigns.delivery.services import QueuedMessage, messages_enqueue_rows
    from campaigns.models import DeliverySettings, MessageClass

    DeliverySettings.objects.update_or_create(workspace=acme, defaults={"daily_cap": 1})
    ann = person(acme, "ann@example.com", [news])
    broadcast = _broadcast(acme, include_lists=[news.pk])
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    cart = EmailTemplateFactory(workspace=acme, name="Cart reminder")
    messages_enqueue_rows(
        workspace=acme,
        rows=[QueuedMessage(contact_id=ann.pk, source="step:1:remind", template_id=cart.pk,
                            message_class=MessageClass.MARKETING)],
    )  # fmt: skip
    messages_send_due()
    step = Message.objects.get(source="step:1:remind")
    promo = _messages(broadcast)["ann@example.com"]
    assert (step.state, promo.state, promo.reason) == ("sent", "skipped", "daily_cap")
