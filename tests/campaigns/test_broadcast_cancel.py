"""Cancel is exact across a crash: a message a worker held when its broadcast was cancelled,
and that came back to the queue afterwards (recovery after the worker died, a retry, a
deferral), is not sent when claimed again: the broadcasts' send gate settles it `skipped` with
the reason `broadcast_cancelled`. Messages of a broadcast still sending, and of another
workspace's broadcast with the same number, go. Pause is exact the same way: such a message is
held until the resume."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import timezone

from audiences.models import Contact, MailingList, Subscription, SubscriptionStatus
from campaigns.broadcasts import services
from campaigns.broadcasts.gate import PAUSE_SHIFT, broadcast_messages_gate
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


@pytest.mark.django_db
def test_a_message_held_at_the_pause_and_put_back_by_recovery_waits_for_the_resume(
    acme: Workspace, broadcast_gate: None
) -> None:
    broadcast = sending(acme, 3)
    # A worker takes all three, then the marketer pauses: nothing is queued to push.
    assert len(message_claim_batch(limit=10, token=timezone.now())) == 3
    assert services.broadcast_pause(workspace=acme, broadcast_id=broadcast.pk) == 0
    assert messages_recover(claimed_after=dt.timedelta(0)) == Recovered(requeued=3, in_doubt=0)

    messages_send_due()

    # Held, not sent and not dropped: back in the queue a pause's shift away, reason noted.
    assert outcomes(broadcast) == {("queued", "broadcast_paused")}
    assert services.broadcast_resume(workspace=acme, broadcast_id=broadcast.pk) == 3
    assert outcomes(broadcast) == {("queued", "")}
    messages_send_due()
    assert outcomes(broadcast) == {("sent", "")}


@pytest.mark.django_db
def test_a_message_the_gate_held_as_the_resume_committed_is_released_by_the_tick(
    acme: Workspace, broadcast_gate: None
) -> None:
    """The gate read "paused", the resume then released what was queued, and only then did the
    batch write its hold: the beat's tick brings that row back."""
    broadcast = sending(acme, 1)
    row = Message.objects.get(source=str(MessageSource.broadcast(broadcast.pk)))
    Message.objects.filter(pk=row.pk).update(due_at=row.due_at + PAUSE_SHIFT, reason="broadcast_paused")

    services.broadcasts_tick()
    messages_send_due()

    assert outcomes(broadcast) == {("sent", "")}
