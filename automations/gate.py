"""The send gate of series steps: checked by the send road right before a step's email goes.

Between the step that queued a message and its sending (quiet hours, a busy cap, a crashed
worker's retry) the contact may have converted, left the series, stopped matching the flow
filter, or the series may have been paused: then the email must not go.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping

from automations.engine.checks import flow_filter_matches, goal_events, goal_matches, has_flow_filter
from automations.models import Enrollment, EnrollmentState, Series, SeriesStatus
from campaigns.models import Message, MessageSource, SkipReason


def step_messages_gate(messages: list[Message], now: dt.datetime) -> Mapping[int, str]:
    """{message id: SkipReason} for step messages that must not go; one query per series."""
    by_enrollment: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        number, _sep, _step = MessageSource.parse(message.source).key.partition(":")
        if number.isdigit():
            by_enrollment[int(number)].append(message)
    enrollments = {
        e.pk: e
        for e in Enrollment.objects.filter(pk__in=list(by_enrollment)).only(
            "id", "series_id", "contact_id", "entry_key", "entered_at", "state", "ended_at"
        )
    }
    series = {
        s.pk: s
        for s in Series.objects.select_related("workspace").filter(pk__in={e.series_id for e in enrollments.values()})
    }
    stopped: dict[int, str] = {}
    checked: dict[int, list[Enrollment]] = defaultdict(list)
    for enrollment_id, group in by_enrollment.items():
        enrollment = enrollments.get(enrollment_id)
        # Ended by the goal or an exit: nothing more for them. (Completed is fine: the step
        # that queued the last email ends the walk right after.)
        if enrollment is None or enrollment.state in (
            EnrollmentState.CONVERTED,
            EnrollmentState.EXITED,
            EnrollmentState.FAILED,
        ):
            stopped.update({m.id: SkipReason.SERIES_ENDED for m in group})
        elif series[enrollment.series_id].status == SeriesStatus.PAUSED:
            stopped.update({m.id: SkipReason.SERIES_PAUSED for m in group})
        else:
            checked[enrollment.series_id].append(enrollment)
    for series_id, members in checked.items():
        one = series[series_id]
        contacts = {e.contact_id for e in members}
        matching = flow_filter_matches(one, contacts, now) if has_flow_filter(one) else contacts
        events = goal_events(one, contacts, min(e.entered_at for e in members), now)
        for enrollment in members:
            if enrollment.contact_id not in matching:
                reason = SkipReason.FLOW_FILTER
            elif any(
                goal_matches(one, ev, enrollment.contact_id, enrollment.entry_key, enrollment.entered_at)
                for ev in events
            ):
                reason = SkipReason.SERIES_ENDED
            else:
                continue
            stopped.update({m.id: reason for m in by_enrollment[enrollment.pk]})
    return stopped
