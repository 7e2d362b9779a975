"""The send loop: claim due messages in batches, check them, render them, hand them over.

States (DESIGN rule 3; see campaigns.models.MessageState):

    queued --claim--> claimed --checks--> suppressed | skipped | queued (quiet hours)
    claimed --render error--> failed
    claimed --mark--> sending --provider accepts--> sent
                      sending --transient error--> queued (later due_at) | failed (retries exhausted)
                      sending --permanent error--> failed
                      sending --worker dies--> in_doubt (recovery; never sent again)

A claimed row was never handed to a provider, so a crash leaves it safe to send again; a row
in `sending` may have reached the provider, so it is never sent again. Each worker process
holds at most one row in `sending` at a time: a crash leaves at most one message in doubt per
process.

Cost per message, for throughput: the batch is claimed, checked and loaded in a handful of
queries; its messages then go through passes — all rendered, all tracked and wrapped, all
written — so each kind of work runs with warm CPU caches, and then they are handed over one by
one. Each message costs one UPDATE (the previous message's `sent` and this one's `sending`,
with the template version it was rendered with, in one statement, committed before the
hand-over; a version's snapshot is written once per process, not per message) plus the
provider's own round trips over a connection opened once per drain (one for SMTP with
PIPELINING: the next message's envelope travels with this one's data, its data only after its
own `sending` is committed). The message is rendered and written (its MIME bytes, for SMTP)
before its row is marked `sending`, so a message that cannot be written fails
instead of ending in doubt.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from campaigns import hooks
from campaigns.delivery import checks
from campaigns.delivery.claims import LEASE, _claim_token, _release, message_claim_batch
from campaigns.delivery.composer import (
    Composed,
    PermanentSendError,
    PreparedEmail,
    Rendered,
    TemplateProblem,
    TransientSendError,
    Transport,
    contact_as_dict,
    rate_limit_wait,
    render,
    template_version_snapshot,
    transport_for,
    wrap,
)
from campaigns.delivery.lookups import Lookups, lookups_load
from campaigns.delivery.retries import maybe_delivered, retry_plan
from campaigns.models import (
    Message,
    MessageState,
    Provider,
    SenderIdentity,
    SkipReason,
)
from esp import clock

logger = logging.getLogger(__name__)

OUTBOX = 0  # transport key of "no provider": the outbox


# The one statement each message costs: a PL/pgSQL function (defined by a campaigns migration)
# whose plan each server connection keeps, as it kept the SQL PREPAREd statement this
# replaced. Unlike PREPARE it is no session state, so it works through PgBouncer in transaction
# pooling; a plain statement, planned for each message, cost more than it took to run.
_MARK_SENDING = "SELECT campaigns_message_mark_sending(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


@dataclass
class _Pending:
    """A message the provider accepted whose `sent` is not written yet: it rides along with
    the next message's `sending` (one statement), or is flushed at the end of the batch."""

    message_id: int
    sent_at: dt.datetime
    provider_message_id: str


@dataclass
class _Ready:
    """A claimed message on its way through the batch's passes: rendered, then tracked and
    wrapped (`composed`), then written for a transport that takes bytes; then handed over."""

    message: Message
    rendered: Rendered
    to_email: str
    template_version: int
    provider: Provider | None
    sender: SenderIdentity | None
    composed: Composed = field(init=False)


@dataclass
class _Batch:
    token: dt.datetime
    started: float
    # Names this batch's cap leases (checks.evaluate).
    holder: int = field(default_factory=lambda: secrets.randbits(62))
    known: Lookups = field(init=False)
    # Providers whose connection could not be opened in this batch: their other messages wait.
    unreachable: dict[int, Exception] = field(default_factory=dict)


class Sender:
    """One drain's state: the open provider connections (reused across batches) and the
    accepted message whose `sent` is not written yet."""

    def __init__(self) -> None:
        self.transports: dict[tuple[int, Any], Transport] = {}
        self.pending: _Pending | None = None
        self.known: Lookups | None = None
        self.counts: dict[str, int] = {}
        # (workspace id, message id) of the batch's messages that reached a final state, for
        # the messages_settled hook; None while nobody listens (nothing collected).
        self.settled: list[tuple[int, int]] | None = None

    # --- provider connections -----------------------------------------------------------

    @staticmethod
    def _key(provider: Provider | None, workspace_id: int) -> tuple[int, Any]:
        # By updated_at too: changed credentials open a new connection. The outbox files its
        # rows under a workspace, so each workspace has its own.
        return (provider.pk, provider.updated_at) if provider is not None else (OUTBOX, workspace_id)

    def transport(self, provider: Provider | None, workspace_id: int) -> Transport:
        key = self._key(provider, workspace_id)
        transport = self.transports.get(key)
        if transport is None:
            transport = transport_for(provider, workspace_id=workspace_id)
            transport.open()
            self.transports[key] = transport
        return transport

    def drop_transport(self, provider: Provider | None, workspace_id: int) -> None:
        """Close a connection after an error: the next message opens a fresh one."""
        transport = self.transports.pop(self._key(provider, workspace_id), None)
        if transport is not None:
            try:
                transport.close()
            except Exception:  # a broken connection may fail to close; it is dropped anyway
                logger.debug("closing a failed transport", exc_info=True)

    def close(self) -> None:
        self.flush()
        for transport in self.transports.values():
            try:
                transport.close()
            except Exception:  # closing is best effort at the end of a drain
                logger.debug("closing a transport", exc_info=True)
        self.transports.clear()

    def count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    # --- one batch ----------------------------------------------------------------------

    def send_batch(self, ids: list[int], token: dt.datetime) -> None:
        batch = _Batch(token=token, started=time.monotonic())
        messages = list(
            Message.objects.filter(pk__in=ids, state=MessageState.CLAIMED, claimed_at=token)
            # The facts ride along: contact_as_dict reads them (templates show purchase facts).
            .select_related("contact", "contact__facts")
            # Send order: where a frequency cap leaves a contact one more email, the most
            # important message of the batch takes it.
            .order_by("-priority", "due_at", "id")
        )
        verdicts = checks.Verdicts(holder=batch.holder)
        self.settled = [] if hooks.messages_settled.has_subscribers else None
        try:
            self._load(batch, messages)
            now = clock.now()
            checks.evaluate(
                messages, workspaces=batch.known.workspaces, settings=batch.known.settings, now=now, verdicts=verdicts
            )
            checks.apply(verdicts, token=token)
            for _, state, _ in verdicts.settled:
                self.count(state)
            if self.settled is not None and verdicts.settled:
                workspace_of = {message.id: message.workspace_id for message in messages}
                self.settled += [(workspace_of[message_id], message_id) for message_id, _, _ in verdicts.settled]
            for _ in verdicts.delayed:
                self.count("delayed")
            for _ in verdicts.retried:
                self.count("retried")
            # In passes over the batch: every ready message is rendered, then each is tracked
            # and wrapped, then written; then each is marked and handed over. Doing one kind
            # of work for the whole batch at a time keeps its code and data in the CPU caches,
            # which the other kinds and the round trips would evict: composing all before the
            # hand-overs saved ~30 % of composing's CPU, the three passes ~7 % of a message's.
            rendered = [ready for message in verdicts.ready if (ready := self._render(batch, message))]
            wrapped = [ready for ready in rendered if self._wrap(batch, ready)]
            prepared = [ready for ready in wrapped if self._written(batch, ready)]
            for position, ready in enumerate(prepared):
                if time.monotonic() - batch.started > LEASE.total_seconds() / 2:
                    # Slow sending (a low rate limit): give the rest back before recovery
                    # would take it for a dead worker's.
                    break
                self._hand_over(batch, ready, _following(prepared, position))
        finally:
            try:
                self.flush()
                # Whatever is still claimed (an error above, or the lease running out) was never
                # handed over: back to the queue for the next drain.
                _release(ids, token)
            finally:
                # Every capped message of the batch is now `sending`/`sent` or back in the
                # queue: another worker counting the same contacts sees them.
                checks.unlock_caps(verdicts)
                self._announce_settled()

    def _note_settled(self, message: Message) -> None:
        if self.settled is not None:
            self.settled.append((message.workspace_id, message.pk))

    def _announce_settled(self) -> None:
        """Tell the layers above which messages of the batch are final (one payload per
        workspace); their `sent` is written by now (flush)."""
        settled, self.settled = self.settled, None
        if not settled:
            return
        by_workspace: dict[int, list[int]] = {}
        for workspace_id, message_id in settled:
            by_workspace.setdefault(workspace_id, []).append(message_id)
        for workspace_id, message_ids in by_workspace.items():
            hooks.messages_settled.fire(hooks.MessagesSettled(workspace_id, tuple(sorted(set(message_ids)))))

    def _load(self, batch: _Batch, messages: list[Message]) -> None:
        """The batch's lookups: those of the drain's last batch while they are fresh and hold
        what these messages name (a broadcast's batches all name the same few rows: six
        queries a batch saved), else loaded now."""
        if self.known is None or not self.known.serve(messages):
            self.known = lookups_load(messages)
        batch.known = self.known

    def _render(self, batch: _Batch, message: Message) -> _Ready | None:
        """The message rendered for its recipient; None when it was settled instead (render
        error, template gone)."""
        workspace = batch.known.workspaces[message.workspace_id]
        template = batch.known.templates.get(message.template_id) if message.template_id else None
        if template is None or template.workspace_id != message.workspace_id:
            self._settle_claimed(
                batch, message, MessageState.FAILED, SkipReason.RENDER_ERROR, "The template was deleted."
            )
            return None
        # The message's own sender and provider, else its template's, else the workspace's.
        sender_id = message.sender_id or template.sender_id
        sender = batch.known.senders.get(sender_id) if sender_id else None
        if sender is None or sender.workspace_id != message.workspace_id:
            sender = batch.known.default_senders.get(message.workspace_id)
        provider_id = message.provider_id or template.provider_id
        provider = batch.known.providers.get(provider_id) if provider_id else None
        if provider is None or provider.workspace_id != message.workspace_id:
            provider = batch.known.default_providers.get(message.workspace_id)
        data = message.data if isinstance(message.data, dict) else {}
        if checks.is_test(message):
            contact = data.get("contact") or {}
        else:
            contact = contact_as_dict(message.contact) if message.contact is not None else {}
        event = data.get("event") or {}
        rendered = None
        with self._failing_on_error(batch, message, "rendering"):
            rendered = render(
                message,
                workspace=workspace,
                template=template,
                contact=contact,
                event=event if isinstance(event, dict) else {},
            )
        if rendered is None:
            return None
        # What "view in browser" will show: a lookup in this process but for a version's first
        # message, whose snapshot is written (committed) before any message names it.
        template_version = template_version_snapshot(template)
        return _Ready(message, rendered, checks.recipient(message), template_version, provider, sender)

    def _wrap(self, batch: _Batch, ready: _Ready) -> bool:
        """The rendered message tracked and wrapped; False when it was settled instead."""
        message = ready.message
        with self._failing_on_error(batch, message, "tracking"):
            ready.composed = wrap(
                message,
                ready.rendered,
                workspace=batch.known.workspaces[message.workspace_id],
                delivery_settings=batch.known.tracking(message),
                sender=ready.sender,
                to_email=ready.to_email,
            )
            return True
        return False

    @contextmanager
    def _failing_on_error(self, batch: _Batch, message: Message, step: str) -> Iterator[None]:
        """A message that cannot be composed fails with the reason for the send log; a bug
        must not stop the drain nor loop over the same rows forever."""
        try:
            yield
        except TemplateProblem as problem:
            self._settle_claimed(batch, message, MessageState.FAILED, SkipReason.RENDER_ERROR, str(problem))
        except Exception as error:
            logger.exception("%s message %s failed", step, message.pk)
            self._settle_claimed(batch, message, MessageState.FAILED, SkipReason.RENDER_ERROR, repr(error))

    def _written(self, batch: _Batch, ready: _Ready) -> bool:
        """Whether the composed message can go: its provider's connection is open and, for a
        transport that takes bytes, its MIME bytes are written — before the row is marked
        `sending`, so a message that cannot be written (a header Django refuses) fails here
        instead of ending in doubt."""
        transport = self._connected(batch, ready.message, ready.provider)
        if transport is None:
            return False
        if transport.wants_bytes:
            with self._failing_on_error(batch, ready.message, "writing"):
                ready.composed.prepared.as_bytes()
                return True
            return False
        return True

    def _connected(self, batch: _Batch, message: Message, provider: Provider | None) -> Transport | None:
        """The provider's open connection; None when it cannot be opened, the message then
        settled (a permanent refusal) or back in the queue (nothing was handed over)."""
        key = _unreachable_key(provider)
        if key not in batch.unreachable:
            try:
                return self.transport(provider, message.workspace_id)
            except (TransientSendError, PermanentSendError) as failure:
                # The batch's other messages for this provider are not tried again (a server
                # that is down would cost a timeout each).
                batch.unreachable[key] = failure
        refusal = batch.unreachable[key]
        if isinstance(refusal, PermanentSendError):
            self._settle_claimed(batch, message, MessageState.FAILED, SkipReason.REJECTED, str(refusal))
        else:
            self._retry_claimed(batch, message, str(refusal))
        return None

    def _hand_over(self, batch: _Batch, ready: _Ready, following: PreparedEmail | None) -> None:
        """Mark the message `sending` (committed), then give it to the provider, telling it
        which message comes next over the same connection (an SMTP server gets that one's
        envelope with this one's data: one round trip a message instead of two)."""
        message, composed, provider = ready.message, ready.composed, ready.provider
        # Opened while preparing; opened again if an error in this batch dropped it since.
        transport = self._connected(batch, message, provider)
        if transport is None:
            return
        if provider is not None and provider.rate_limit:
            rate_limit_wait(provider.pk, provider.rate_limit)
        if not self._mark_sending(batch, message, composed, ready.to_email, ready.template_version):
            return  # taken back by recovery meanwhile: not ours to send
        try:
            provider_message_id = transport.send_prepared(composed.prepared, following)
        except TransientSendError as error:
            self.drop_transport(provider, message.workspace_id)
            if maybe_delivered(error):
                self._finish_sending(message, MessageState.IN_DOUBT, SkipReason.CRASHED, str(error))
            else:
                self._retry_sending(message, str(error))
                if error.code is None:
                    # Unreachable (an ESP's API is only reached when sending): the batch's other
                    # messages for it go back to the queue untried, as when a connection fails to open.
                    batch.unreachable[_unreachable_key(provider)] = error
        except PermanentSendError as error:
            self._finish_sending(message, MessageState.FAILED, SkipReason.REJECTED, str(error))
        except Exception as error:
            # Not classified: the provider may or may not have taken it. At most once wins.
            logger.exception("sending message %s failed", message.pk)
            self.drop_transport(provider, message.workspace_id)
            self._finish_sending(message, MessageState.IN_DOUBT, SkipReason.CRASHED, repr(error))
        else:
            # On the engine's clock: caps and smart sending measure their windows from it.
            self.pending = _Pending(message.pk, clock.now(), str(provider_message_id or "")[:255])
            self.count(MessageState.SENT)
            self._note_settled(message)

    # --- writes -------------------------------------------------------------------------

    def _mark_sending(
        self, batch: _Batch, message: Message, composed: Composed, to_email: str, template_version: int
    ) -> bool:
        """Commit `sending` for this message (with the previous one's `sent`) before the
        hand-over. False when the row is no longer this worker's claim."""
        pending, self.pending = self.pending, None
        # Times and the links go as text literals for the statement's typed parameters:
        # psycopg2 adapts a datetime or a list several times slower (~35 µs a message here).
        rows = _execute_raw(
            _MARK_SENDING,
            [
                message.pk,
                timezone.now().isoformat(),
                composed.subject[:998],
                _text_array(composed.links),
                to_email[:254],
                batch.token.isoformat(),
                pending.message_id if pending else -1,
                pending.sent_at.isoformat() if pending else None,
                pending.provider_message_id if pending else "",
                template_version,
            ],
        )
        return bool(rows[0][0])

    def flush(self) -> None:
        """Write the accepted message's `sent`, if one is waiting."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE campaigns_message SET state = 'sent', sent_at = %s, provider_message_id = %s,
                    reason = CASE WHEN state = 'sending' THEN reason ELSE '' END
                WHERE id = %s AND state IN ('sending', 'in_doubt')
                """,
                [pending.sent_at, pending.provider_message_id, pending.message_id],
            )

    def _settle_claimed(self, batch: _Batch, message: Message, state: str, reason: str, error: str) -> None:
        Message.objects.filter(pk=message.pk, state=MessageState.CLAIMED, claimed_at=batch.token).update(
            state=state, reason=reason, error=error
        )
        self.count(state)
        self._note_settled(message)

    def _retry_claimed(self, batch: _Batch, message: Message, error: str) -> None:
        """The provider could not be reached before anything was handed over."""
        state, reason, due_at = retry_plan(message, gave_up=SkipReason.RETRIES_EXHAUSTED)
        Message.objects.filter(pk=message.pk, state=MessageState.CLAIMED, claimed_at=batch.token).update(
            state=state, reason=reason, error=error, attempts=message.attempts + 1, due_at=due_at, claimed_at=None
        )
        self.count("retried" if state == MessageState.QUEUED else state)
        if state != MessageState.QUEUED:
            self._note_settled(message)

    def _retry_sending(self, message: Message, error: str) -> None:
        """A transient refusal (4xx, throttling): the provider did not take the message, so it
        may go again after the backoff."""
        state, reason, due_at = retry_plan(message, gave_up=SkipReason.RETRIES_EXHAUSTED)
        Message.objects.filter(pk=message.pk, state=MessageState.SENDING).update(
            state=state, reason=reason, error=error, attempts=message.attempts + 1, due_at=due_at, claimed_at=None
        )
        self.count("retried" if state == MessageState.QUEUED else state)
        if state != MessageState.QUEUED:
            self._note_settled(message)

    def _finish_sending(self, message: Message, state: str, reason: str, error: str) -> None:
        Message.objects.filter(pk=message.pk, state=MessageState.SENDING).update(
            state=state, reason=reason, error=error
        )
        self.count(state)
        self._note_settled(message)


def _unreachable_key(provider: Provider | None) -> int:
    return provider.pk if provider is not None else OUTBOX


def _following(prepared: list[_Ready], position: int) -> PreparedEmail | None:
    """The message handed over after prepared[position], if it goes over the same connection."""
    if position + 1 == len(prepared):
        return None
    ready, following = prepared[position], prepared[position + 1]
    same = Sender._key(ready.provider, ready.message.workspace_id) == Sender._key(
        following.provider, following.message.workspace_id
    )
    return following.composed.prepared if same else None


def _text_array(values: list[str]) -> str:
    """A PostgreSQL array literal of texts (each quoted, so commas, braces and spaces are
    safe; backslash and double quote escaped)."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def _execute_raw(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """One statement on the DB-API cursor under Django's connection, with Django's error
    wrapping but without its cursor wrapper (~35 µs a statement, paid once per message)."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()


def messages_send_due(
    *,
    max_batches: int | None = None,
    batch_size: int = 100,
    deadline: float | None = None,
    go_on: Callable[[int], bool] | None = None,
) -> int:
    """Send due messages until none is left, `max_batches` batches were taken, the monotonic
    clock passes `deadline`, or `go_on(claimed in the last batch)` says stop. Provider
    connections stay open across the batches. Returns how many messages were claimed (each
    brought to its next state: sent, settled, delayed, or back to the queue for a retry)."""
    sender = Sender()
    claimed = 0
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            if deadline is not None and time.monotonic() >= deadline:
                break
            token = _claim_token()
            ids = message_claim_batch(limit=batch_size, token=token)
            if not ids:
                break
            batches += 1
            claimed += len(ids)
            sender.send_batch(ids, token)
            if len(ids) < batch_size or (go_on is not None and not go_on(len(ids))):
                break
    finally:
        sender.close()
        if claimed:
            logger.info("sent due messages", extra={"claimed": claimed, "outcomes": sender.counts})
    return claimed
