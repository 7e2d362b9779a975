"""The kinds of segment condition, by name: the one place a new kind plugs in.

A kind checks its part of a rule (`clean`), turns it into a predicate over Contact (`compile`:
a Q object, never a query run on its own), says it in words (`describe`), and tells the
builder in the browser what to offer (`schema`). The built-in kinds are in conditions.py;
campaigns adds engagement (opened / clicked) the same way:

    from audiences.segments.registry import ConditionKind, register_condition_kind
    register_condition_kind(ConditionKind(name="engagement", ...))   # in an AppConfig.ready()

A kind whose schema lists `fields` (each with a value type) gets the builder's generic
"field → operator → value" row; others need a renderer in static/js/segment_builder.js.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q
from django.utils import timezone

from audiences.segments.values import Clock, RuleErrors

if TYPE_CHECKING:
    import datetime as dt

    from audiences.models import CustomField
    from esp.models import Workspace


class RuleContext:
    """What compiling a workspace's rules needs to know, read once per context: its custom
    fields and lists (so a refresh of all segments of a workspace reads them once), its time
    zone and the moment the rules are evaluated at."""

    def __init__(
        self, workspace: Workspace, now: dt.datetime | None = None, contact_ids: Sequence[int] | None = None
    ) -> None:
        self.workspace = workspace
        # Set when only these contacts are evaluated (an incremental refresh): kinds may narrow
        # their subqueries to them, e.g. group only these contacts' events instead of the
        # whole workspace's. It must not change the answer for these contacts.
        self.contact_ids = contact_ids
        try:
            tz = ZoneInfo(workspace.time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo("UTC")
        self.clock = Clock(now or timezone.now(), tz)

    @cached_property
    def custom_fields(self) -> dict[str, CustomField]:
        from audiences.models import CustomField

        return {f.key: f for f in CustomField.objects.in_workspace(self.workspace)}

    @cached_property
    def recent_events_built(self) -> bool:
        """Whether event counts may be read from RecentEvent (audiences/recent_events.py)."""
        from audiences.recent_events import recent_events_built

        return recent_events_built(workspace_id=self.workspace.pk)

    @cached_property
    def lists(self) -> dict[int, str]:
        from audiences.models import MailingList

        return dict(MailingList.objects.in_workspace(self.workspace).values_list("pk", "name"))


@dataclass(frozen=True)
class ConditionKind:
    name: str
    label: Any
    # Keys a condition of this kind may have besides "kind"; anything else is an error, so a
    # typo ("opertor") is reported instead of silently ignored.
    keys: frozenset[str]
    clean: Callable[[dict[str, Any], RuleContext, str, RuleErrors], dict[str, Any]]
    compile: Callable[[dict[str, Any], RuleContext], Q]
    describe: Callable[[dict[str, Any], RuleContext], str]
    schema: Callable[[RuleContext], dict[str, Any]] = field(default=lambda ctx: {})
    # Whether the result can change with the clock alone ("in the last 30 days"): such
    # segments are refreshed by beat.
    time_relative: Callable[[dict[str, Any]], bool] = field(default=lambda condition: False)


CONDITION_KINDS: dict[str, ConditionKind] = {}


def register_condition_kind(kind: ConditionKind) -> None:
    if kind.name in CONDITION_KINDS and CONDITION_KINDS[kind.name] is not kind:
        raise ValueError(f"a segment condition kind named {kind.name!r} is registered already")
    CONDITION_KINDS[kind.name] = kind
