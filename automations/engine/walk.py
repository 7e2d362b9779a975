"""What a step's run sees: the enrollments standing on it (walkers) and the moment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from automations.models import Series, SeriesVersion
from esp.models import Workspace


@dataclass
class Walker:
    """An enrollment in the runner's hands (its row is locked until the run commits)."""

    id: int
    workspace_id: int
    series_id: int
    version_id: int
    contact_id: int
    entry_key: str
    entry_data: dict[str, Any]
    entered_at: dt.datetime
    step_key: str
    step_started_at: dt.datetime | None
    due_at: dt.datetime | None
    # On this step already and waiting on it (a wait's end, a timeout, an awaited event).
    waiting: bool
    wait_event: str
    wait_key: str
    wait_met_event_id: int | None
    holdout: bool
    hops: int
    state: str = ""
    # When the run found it due (kept through the run's steps): a step of a paused series that
    # fell due long ago is stale.
    fell_due_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    end_reason: str = ""
    changed: bool = field(default=False, compare=False)


@dataclass
class RunContext:
    now: dt.datetime
    workspace: Workspace
    series: Series
    version: SeriesVersion
