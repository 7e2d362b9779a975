"""The people behind a count on a series' step: who reached it, waits on it now, was sent its
email, opened, clicked, converted, was skipped for a reason or took a branch — over the same
period and by the same rules as the count (automations.selectors.series_step_counts).

Pages are keyset pages, newest first: by (time, row id) of the trace row, or of the live
enrollment for "waiting". Never OFFSET: a list of 100k people pages as fast at its end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from automations.models import Enrollment, Series, SeriesVersion, Trace, TraceOutcome
from campaigns.models import MessageState
from esp.models import Workspace

PAGE_SIZE = 50

# Counts of one trace outcome each.
_OUTCOMES = {
    "converted": TraceOutcome.CONVERTED,
    "held_out": TraceOutcome.HELD_OUT,
    "exited": TraceOutcome.EXITED,
    "failed": TraceOutcome.FAILED,
}
# An email counted as sent, and those counted by what happened to the message.
_MESSAGE_FACTS = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}
NOT_SENT = (MessageState.SKIPPED, MessageState.SUPPRESSED)
KINDS = frozenset({"reached", "waiting", "sent", *_MESSAGE_FACTS, *_OUTCOMES})
# Kinds that carry a value after a colon: "skipped:frequency_cap", "branch:yes".
VALUED_KINDS = frozenset({"skipped", "branch"})
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class BadWhat(ValueError):
    pass


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class What:
    kind: str
    value: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.kind in VALUED_KINDS else self.kind


def parse_what(text: str | None) -> What:
    """`what` of the query string: one of KINDS, or "skipped:<reason>" / "branch:<name>";
    absent, who reached the step."""
    text = (text or "").strip()
    if not text:
        return What("reached")
    kind, colon, value = text.partition(":")
    if kind in VALUED_KINDS and colon and value and len(value) <= 400:
        return What(kind, value)
    if kind in KINDS and not colon:
        return What(kind)
    raise BadWhat(text)


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the (time, id) of its last row."""

    at: dt.datetime
    id: int

    def encode(self) -> str:
        return f"{(self.at - _EPOCH) // dt.timedelta(microseconds=1)}_{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        micros, _sep, row_id = text.partition("_")
        for part in (micros, row_id):
            if not (part.isascii() and part.isdigit() and len(part) <= 18):
                raise BadCursor(text)
        try:
            return cls(_EPOCH + dt.timedelta(microseconds=int(micros)), int(row_id))
        except OverflowError:
            raise BadCursor(text) from None


@dataclass(frozen=True)
class Person:
    """One row of the list: the enrollment (with its contact) and when the counted thing
    happened; `trace` is the step's row that was counted (None for "waiting")."""

    enrollment: Enrollment
    at: dt.datetime
    trace: Trace | None = None


@dataclass
class PeoplePage:
    people: list[Person]
    next_cursor: Cursor | None


def step_key_known(*, workspace: Workspace, series: Series, step_key: str) -> bool:
    """Whether a version of the series has a step with this key (one containment query)."""
    return SeriesVersion.objects.filter(
        workspace=workspace, series=series, steps__contains={"steps": [{"key": step_key}]}
    ).exists()


def _skipped(rows: QuerySet[Trace], reason: str) -> QuerySet[Trace]:
    """Skip reasons as automations.selectors.SKIP_LABEL_SQL labels them: the engine's up to
    its colon, or the send road's reason for a message it did not send."""
    wanted = Q(outcome=TraceOutcome.SENT, message__state__in=NOT_SENT) & (
        Q(message__reason=reason) | Q(message__reason="", message__state=reason)
    )
    if ":" not in reason:  # an engine label is a reason's part before its first colon
        engine = Q(reason=reason) | Q(reason__startswith=f"{reason}:")
        if reason == "skipped":
            engine |= Q(reason="")
        wanted |= Q(outcome=TraceOutcome.SKIPPED) & engine
    return rows.filter(wanted)


def _trace_rows(
    workspace: Workspace, series: Series, step_key: str, what: What, since: dt.datetime | None
) -> QuerySet[Trace]:
    rows = Trace.objects.filter(workspace=workspace, series=series, step_key=step_key)
    if since is not None:
        rows = rows.filter(ran_at__gte=since)
    if what.kind == "reached":
        # The row a visit began with (automations.selectors.ARRIVAL_SQL): its "waiting" row,
        # else its only one.
        waited_before = Trace.objects.filter(
            enrollment_id=OuterRef("enrollment_id"),
            id__lt=OuterRef("id"),
            step_key=OuterRef("step_key"),
            outcome=TraceOutcome.WAITING,
        )
        return rows.filter(Q(outcome=TraceOutcome.WAITING) | ~Exists(waited_before))
    if what.kind == "sent":
        return rows.filter(outcome=TraceOutcome.SENT).exclude(message__state__in=NOT_SENT)
    if what.kind in _MESSAGE_FACTS:
        return rows.filter(outcome=TraceOutcome.SENT, **{f"message__{_MESSAGE_FACTS[what.kind]}__isnull": False})
    if what.kind in _OUTCOMES:
        return rows.filter(outcome=_OUTCOMES[what.kind])
    if what.kind == "branch":
        return rows.filter(outcome=TraceOutcome.BRANCHED, branch=what.value)
    if what.kind == "skipped":
        return _skipped(rows, what.value)
    raise BadWhat(str(what))


def step_people(
    *,
    workspace: Workspace,
    series: Series,
    step_key: str,
    what: What,
    since: dt.datetime | None,
    after: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> PeoplePage:
    """One page of the people behind a count, newest first; `after` is the previous page's
    `next_cursor`. "waiting" is always who stands on the step now, whatever the period."""
    people: list[Person]
    if what.kind == "waiting":
        live = (
            Enrollment.objects.filter(workspace=workspace, series=series, step_key=step_key, ended_at__isnull=True)
            .annotate(since=Coalesce("step_started_at", "entered_at"))
            .select_related("contact")
        )
        if after is not None:
            live = live.filter(Q(since__lt=after.at) | Q(since=after.at, id__lt=after.id))
        found = list(live.order_by("-since", "-id")[: size + 1])
        people = [Person(enrollment=e, at=e.since) for e in found]  # type: ignore[attr-defined]
    else:
        rows = _trace_rows(workspace, series, step_key, what, since)
        if after is not None:
            rows = rows.filter(Q(ran_at__lt=after.at) | Q(ran_at=after.at, id__lt=after.id))
        traces = list(rows.select_related("enrollment__contact", "message").order_by("-ran_at", "-id")[: size + 1])
        people = [Person(enrollment=t.enrollment, at=t.ran_at, trace=t) for t in traces]
    more = len(people) > size
    people = people[:size]
    last = people[-1] if people else None
    next_cursor = None
    if more and last is not None:
        next_cursor = Cursor(last.at, last.trace.pk if last.trace is not None else last.enrollment.pk)
    return PeoplePage(people=people, next_cursor=next_cursor)
