"""What campaigns tells the layers above it, without importing them (as audiences.hooks does,
on the same Hook class): messages that reached a final state.

    from campaigns import hooks
    hooks.messages_settled.subscribe(on_messages_settled)

The send loop fires `messages_settled` once per batch and workspace, after the batch's writes
(sent, failed, skipped, suppressed, in doubt), so a series can go on from a step whose email
went, and reports can count it. Engagement (opens, clicks, bounces) reaches the layers above as
events in the audiences event store ("Email Opened", with the message id and source), through
audiences' `events_stored`: no hook of its own here. Subscribers should do little (enqueue a
task with the ids): they run in the sending worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from audiences.hooks import Hook, payload_batches


@dataclass(frozen=True)
class MessagesSettled:
    """Messages of the workspace now sent, failed, skipped, suppressed or in doubt (read
    their state and reason from the rows)."""

    workspace_id: int
    message_ids: tuple[int, ...]

    def batches(self, size: int) -> Iterator[MessagesSettled]:
        return payload_batches(self, size, "message_ids")


messages_settled: Hook[MessagesSettled] = Hook("messages settled")
