"""Cancel is exact across a crash: a message a worker held when its broadcast was cancelled,
and that came back to the queue afterwards (recovery after the worker died, a retry, a
deferral), is not sent when claimed again: the broadcasts' send gate settles it `skipped` with
the reason `broadcast_cancelled`. Messages of a broadcast still sending, and of another
workspace's broadcast with the same number, go."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import timezone

from audiences.models import Contact, MailingList, Subscription, SubscriptionStatus
from campaigns.broadcasts import services
from campaigns.broadcasts.gate import broadcast_messages_gate
from campaigns.broadcasts.services import BroadcastInput
from campaigns.delivery import gates
from campaigns.delivery.claims import message_claim_batch
from campaigns.delivery.recovery import Recovered, messages_recover
from campaigns.delivery.sender import messages_send_due
from campaigns.delivery.services import messages_enqueue
from campaigns.models import Broadcast, BroadcastStatus, Message, MessageClass, MessageSource, SourceKind
from esp.models import Workspace
from tests.factories import EmailTemplateFactory


@pytest.fixture
def broadcast_gate() -> Iterator[None]:
    """The gate CampaignsConfig.ready() registers (tests/campaigns/conftest.py sets gates aside)."""
    gates.register(SourceKind.BROADCAST, broadcast_messages_gate)
    yield
    gates.unregister(SourceKind.BROADCAST, broadcast_messages_gate)


def sending(workspace: Workspace, count: int) -> Broadcast:
    """A broadcast to `count` subscribers, started now."""
    news = MailingList.objects.create(workspace=workspace, name="News")
    for n in range(count):
        contact = Contact.objects.create(workspace=workspace, email=f"p{n}@{workspace.slug}.example")
        Subscription.objects.create(
            workspace=workspace, contact=contact, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED
        )
    template = EmailTemplateFactory(workspace=workspace, name="Sale", subject="Sale")
    broadcast = services.broadcast_create(
        workspace=workspace,
        data=BroadcastInput(name="Sale", template=template.pk, include_lists=[news.pk], send_mode="now"),
    )
    return services.broadcast_schedule(workspace=workspace, broadcast_id=broadcast.pk)


def outcomes(broadcast: Broadcast) -> set[tuple[str, str]]:
    rows = Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk)))
    return set(rows.values_list("state", "reason"))


@pytest.mark.django_db
def test_a_message_held_at_the_cancel_and_put_back_by_recovery_is_not_sent(
    acme: Workspace, broadcast_gate: None
) -> None:
    broadcast = sending(acme, 3)
    # A worker takes all three, then the marketer cancels: nothing is queued to settle.
    assert len(message_claim_batch(limit=10, token=timezone.now())) == 3
    assert services.broadcast_cancel(workspace=acme, broadcast_id=broadcast.pk) == 0
    # The worker dies before sending; recovery puts its claims back.
    assert messages_recover(claimed_after=dt.timedelta(0)) == Recovered(requeued=3, in_doubt=0)

    messages_send_due()

    assert outcomes(broadcast) == {("skipped", "broadcast_cancelled")}


@pytest.mark.django_db
def test_messages_of_a_live_broadcast_and_of_another_workspace_go(
    acme: Workspace, globex: Workspace, broadcast_gate: None
) -> None:
    live = sending(acme, 2)
    cancelled = sending(globex, 1)
    assert services.broadcast_cancel(workspace=globex, broadcast_id=cancelled.pk) == 1
    # acme's messages under the number of globex's cancelled broadcast: not that broadcast's.
    messages_enqueue(
        workspace=acme,
        source=str(MessageSource.broadcast(cancelled.pk)),
        contacts=Contact.objects.filter(workspace=acme),
        template=live.template,
        message_class=MessageClass.MARKETING,
    )

    messages_send_due()

    assert outcomes(live) == {("sent", "")}
    acme_rows = Message.objects.filter(workspace=acme, source=str(MessageSource.broadcast(cancelled.pk)))
    assert set(acme_rows.values_list("state", flat=True)) == {"sent"}
    assert Broadcast.objects.get(pk=cancelled.pk).status == BroadcastStatus.CANCELLED
