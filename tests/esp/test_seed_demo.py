"""`manage.py seed_demo` (what `make run` starts with): the demo workspace, its audience, and
the shop history sent through the real ingestion, pipeline, facts and segment services — once,
however often it runs."""

from __future__ import annotations

import html
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count, F
from django.utils import timezone

from audiences.events.selectors import event_summary
from audiences.models import (
    Contact,
    ContactAlias,
    CustomerFacts,
    Event,
    PendingEvents,
    Segment,
    SegmentMembership,
    Suppression,
    SuppressionReason,
)
from campaigns.models import EmailTemplate, Message, MessageEvent, MessageState
from esp.models import OutboxMessage, Role, User, Workspace
from tests.conftest import logged_in


def _snapshot(workspace: Workspace) -> dict[str, int]:
    return {
        "contacts": Contact.objects.in_workspace(workspace).count(),
        "events": Event.objects.in_workspace(workspace).count(),
        "facts": CustomerFacts.objects.filter(workspace=workspace).count(),
        "segments": Segment.objects.in_workspace(workspace).count(),
        "memberships": SegmentMembership.objects.in_workspace(workspace).count(),
        "aliases": ContactAlias.objects.in_workspace(workspace).count(),
    }


@pytest.mark.django_db
def test_seed_demo_builds_a_shop_history_with_facts_and_segments_once(tmp_path: Path, settings: object) -> None:
    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]  # not the developer's var/demo.json
    call_command("seed_demo", stdout=StringIO())
    workspace = Workspace.objects.get(slug="demo-shop")
    events = Event.objects.in_workspace(workspace)
    counts = _snapshot(workspace)
    assert counts["contacts"] == 240 and counts["events"] > 5000

    # The e-commerce spec's events, with what facts and emails need.
    names = dict(events.values_list("name").annotate(n=Count("id")))
    for name in ("Home", "Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Order Completed"):
        assert names.get(name, 0) > 100, name
    assert 0 < names["Order Refunded"] < names["Order Completed"] / 5
    order = events.filter(name="Order Completed", contact__locale="bg").first()
    assert order is not None and order.properties["currency"] == "EUR" and order.properties["order_id"]
    product = order.properties["products"][0]
    assert {"product_id", "name", "category", "price", "quantity", "image_url", "url"} <= set(product)
    assert any("\u0400" <= ch <= "\u04ff" for ch in product["name"])  # named in Bulgarian
    assert (
        events.filter(name="Order Completed").values("properties__order_id").distinct().count()
        == names["Order Completed"]
    )
    assert not events.filter(occurred_at__gt=timezone.now()).exists()
    # Abandoned carts: carts of people who ordered nothing within the day after.
    assert events.filter(name="Cart Viewed").count() > names["Order Completed"]

    # Anonymous browsing merged by identify; strangers who never signed up stay anonymous.
    merged = events.filter(anonymous_id__startswith="anon-cust-")
    assert merged.exists() and not merged.filter(contact__isnull=True).exists()
    assert counts["aliases"] >= merged.values("anonymous_id").distinct().count()
    visitors = events.filter(anonymous_id__startswith="anon-visitor-")
    assert visitors.exists() and not visitors.exclude(contact__isnull=True).exists()
    assert not events.filter(contact__isnull=True).exclude(anonymous_id__startswith="anon-visitor-").exists()
    # Sent as it happened, except the few that came late from an offline phone.
    # (The mail's engagement, recorded by the seed after the fact, is not the shop's.)
    shop_events = events.exclude(name__startswith="Email ")
    late = shop_events.filter(received_at__gt=F("occurred_at") + timedelta(minutes=15)).count()
    assert 0 < late < counts["events"] / 10
    assert not PendingEvents.objects.filter(workspace=workspace).exists()  # all processed

    # Facts, RFM and lifecycle, and the demo segments with their members.
    facts = CustomerFacts.objects.filter(workspace=workspace)
    assert facts.filter(orders_count__gte=2).count() > 50
    assert facts.exclude(rfm_segment="").count() > 100 and facts.filter(rfm_segment="champions").exists()
    assert facts.values("lifecycle_stage").distinct().count() >= 4
    assert facts.exclude(predicted_next_order_at=None).exists()
    segments = {s.name: s for s in Segment.objects.in_workspace(workspace)}
    assert set(segments) >= {  # and those the series recipes made (tests/automations/test_demo.py)
        "Bulgarian customers with 2+ orders in 90 days",
        "Browsed but never bought",
        "Birthdays in the next 30 days",
        "Champions",
    }
    for segment in segments.values():
        current = SegmentMembership.objects.filter(segment=segment, exited_at=None).count()
        assert segment.refreshed_at and segment.member_count == current, segment.name
        assert current > 0 or segment.name == "Birthday today", segment.name
    champions = SegmentMembership.objects.filter(segment=segments["Champions"], exited_at=None)
    assert champions.count() == facts.filter(rfm_segment="champions").count()

    # Its mail: the starters, and a month sent through the real road into the outbox, with the
    # engagement a month brings (also in the event store, for segments and series).
    assert EmailTemplate.objects.in_workspace(workspace).exclude(starter="").values("starter").distinct().count() == 8
    # The demo month's mail; the series' step emails are checked in tests/automations/test_demo.py.
    sent = Message.objects.in_workspace(workspace).filter(state=MessageState.SENT, source__startswith="demo:")
    assert sent.count() > 200
    assert OutboxMessage.objects.filter(workspace=workspace).count() >= sent.count()
    cart = sent.filter(source__startswith="demo:abandoned-cart:").first()
    assert cart is not None and cart.data["event"]["products"] and cart.links
    # Order thank-yous are transactional and come from the orders address (their template's sender).
    thanks = sent.filter(source__startswith="demo:thank-you:")
    assert thanks.exists() and not thanks.exclude(message_class="transactional").exists()
    stored = OutboxMessage.objects.filter(workspace=workspace, to=[thanks.first().to_email]).order_by("-id")
    assert any("orders@demo.shop" in mail.from_email for mail in stored)
    assert sent.count() / 4 < sent.exclude(opened_at=None).count() < sent.count()
    assert MessageEvent.objects.filter(message__workspace=workspace, is_machine=True).exists()
    # The send log lists by id, newest first: the demo's dates agree with that order.
    dates = list(sent.order_by("-id").values_list("sent_at", flat=True))
    assert dates == sorted(dates, reverse=True)
    assert names["Email Opened"] > 50 and names["Email Clicked"] > 10
    assert Suppression.objects.in_workspace(workspace).filter(reason=SuppressionReason.COMPLAINT).exists()

    # The profile shows the history.
    owner = User.objects.get(email="owner@demo.shop")
    assert owner.memberships.get(workspace=workspace).role == Role.OWNER
    # The first login a newcomer tries reads English; the Russian catalogue has its own member.
    assert owner.language == "en"
    assert User.objects.filter(email__endswith="@demo.shop", language="ru").exists()
    page = html.unescape(logged_in(owner).get(f"/audience/contacts/{order.contact_id}/").content.decode())
    newest = events.filter(contact_id=order.contact_id).order_by("-occurred_at", "-id").first()
    assert newest is not None and newest.name in page and event_summary(newest) in page

    # A promo broadcast went out last week with a week's engagement, after a newsletter a month
    # for seventeen months; the next one is scheduled for 10:00 next week in each contact's
    # zone. Both pages answer.
    from campaigns.broadcasts.selectors import progress
    from campaigns.models import Broadcast, BroadcastStatus, SendMode

    sent = Broadcast.objects.filter(workspace=workspace, status=BroadcastStatus.SENT).order_by("started_at")
    assert sent.count() == 18
    history = progress(workspace=workspace, broadcast_ids=[b.pk for b in sent])
    assert all(history[b.pk].sent > 0 for b in sent), {b.name: history[b.pk].sent for b in sent}
    opened, delivered = sum(f.opened for f in history.values()), sum(f.delivered for f in history.values())
    assert 0.2 < opened / delivered < 0.6
    finished = sent.last()
    assert finished is not None and finished.name == "Spring sale −20 %"
    figures = progress(workspace=workspace, broadcast_ids=[finished.pk])[finished.pk]
    assert figures.sent > 50 and figures.queued == 0
    assert 0 < figures.clicked < figures.opened < figures.delivered < figures.sent and figures.bounced > 0
    upcoming = Broadcast.objects.get(workspace=workspace, status=BroadcastStatus.SCHEDULED)
    assert upcoming.send_mode == SendMode.LOCAL and upcoming.local_at is not None
    assert (upcoming.local_at.hour, upcoming.local_at.minute) == (10, 0)
    assert upcoming.local_at.date() > timezone.now().date() + timedelta(days=5)
    report = logged_in(owner).get(f"/broadcasts/{finished.pk}/")
    assert report.status_code == 200 and len(report.context["clicks"]) >= 1
    # Its subject was A/B tested on 30 %: B won after the wait and went to the rest.
    from campaigns.models import BroadcastTest

    test = BroadcastTest.objects.get(broadcast=finished)
    assert (test.state, test.winner) == ("decided", "B") and test.rest_recipients > 0 and test.decision_reason
    assert logged_in(owner).get(f"/broadcasts/{finished.pk}/ab/").status_code == 200
    assert logged_in(owner).get("/broadcasts/").status_code == 200

    # Again: nothing is stored twice, nothing changes.
    call_command("seed_demo", stdout=StringIO())
    assert _snapshot(workspace) == counts
