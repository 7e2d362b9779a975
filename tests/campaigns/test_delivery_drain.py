"""Draining from Celery: the slots that bound concurrent drains, the budget and successor, and
the after-commit start by whoever queues messages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from audiences.models import Contact
from campaigns.delivery import drain
from campaigns.delivery.services import messages_enqueue
from campaigns.models import EmailTemplate, Message, MessageClass
from esp.models import OutboxMessage, Workspace

MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ contact.email }}</mj-text>"
    "</mj-column></mj-section></mj-body></mjml>"
)


@pytest.fixture(autouse=True)
def _clean_slots() -> Iterator[None]:
    def clean() -> None:
        client = drain._redis()
        for key in client.scan_iter(f"{drain._prefix()}:*"):
            client.delete(key)

    clean()
    yield
    clean()


def queue(workspace: Workspace, count: int, source: str = "broadcast:1") -> None:
    for n in range(count):
        Contact.objects.create(workspace=workspace, email=f"d{n}@example.com")
    template = EmailTemplate.objects.create(workspace=workspace, name=source, subject="Hi", mjml=MJML)
    messages_enqueue(
        workspace=workspace,
        source=source,
        contacts=Contact.objects.filter(workspace=workspace),
        template=template,
        message_class=MessageClass.MARKETING,
    )


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@override_settings(SEND_CONCURRENCY=2)
def test_at_most_send_concurrency_slots_and_dead_holders_free_theirs() -> None:
    first, second = drain.slot_acquire(), drain.slot_acquire()
    assert first is not None and second is not None and first.key != second.key
    assert drain.slot_acquire() is None and drain.slots_busy() == 2
    first.release()
    third = drain.slot_acquire()
    assert third is not None and third.key == first.key
    # The holder of `second` dies (kill -9): its slot is free at once, not after the TTL.
    drain._redis().set(second.key, f"{socket.gethostname()}:{dead_pid()}:1", ex=60)
    taken = drain.slot_acquire()
    assert taken is not None and taken.key == second.key and drain._redis().get(second.key) == taken.holder
    # A live holder, or one on another machine, keeps its slot.
    drain._redis().set(second.key, f"{socket.gethostname()}:{os.getpid()}:2", ex=60)
    assert drain.slot_acquire() is None
    drain._redis().set(second.key, f"other-host:{dead_pid()}:1", ex=60)
    assert drain.slot_acquire() is None
    # Releasing checks the holder: a slot taken over is not freed by its old holder.
    second.release()
    assert drain._redis().exists(second.key)


@pytest.mark.django_db
@override_settings(SEND_CONCURRENCY=2)
def test_drain_sends_everything_and_asks_for_a_helper_while_the_queue_is_long(acme: Workspace) -> None:
    queue(acme, 250)
    asked: list[str] = []
    claimed = drain.messages_drain(enqueue_more=lambda: asked.append("more"), batch_size=100)
    assert claimed == 250
    assert Message.objects.filter(state="sent").count() == 250 == OutboxMessage.objects.count()
    assert asked == ["more"]  # one helper, while a full batch showed more work
    assert drain.slots_busy() == 0


@pytest.mark.django_db
@override_settings(SEND_CONCURRENCY=1)
def test_a_drain_without_a_slot_exits_and_leaves_word_for_the_holder(acme: Workspace) -> None:
    queue(acme, 5)
    held = drain.slot_acquire()
    assert held is not None
    assert drain.messages_drain(enqueue_more=lambda: None) == 0
    assert Message.objects.filter(state="queued").count() == 5
    assert drain._redis().get(f"{drain._prefix()}:wanted") == "1"
    held.release()


@pytest.mark.django_db
@override_settings(SEND_CONCURRENCY=1)
def test_a_drain_out_of_budget_queues_its_successor(acme: Workspace) -> None:
    queue(acme, 30)
    asked: list[str] = []
    claimed = drain.messages_drain(enqueue_more=lambda: asked.append("next"), budget_seconds=0, batch_size=10)
    assert claimed == 10 and asked == ["next"]
    assert Message.objects.filter(state="queued").count() == 20
    assert drain.slots_busy() == 0


@pytest.mark.django_db(transaction=True)
def test_queueing_starts_a_drain_after_commit(acme: Workspace, run_tasks_now: Any) -> None:
    queue(acme, 3)
    # Eager Celery: the task ran at commit, in this process.
    assert Message.objects.filter(state="sent").count() == 3
    assert OutboxMessage.objects.filter(workspace=acme).count() == 3
