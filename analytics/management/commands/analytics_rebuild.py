"""Recompute the report rollups from the raw send log and events:

    manage.py analytics_rebuild [--workspace ID] [--since YYYY-MM-DD] [--until YYYY-MM-DD]

Days are in each workspace's zone; without --since/--until, all of them. Run it after loading
messages or events in bulk (not through the send road or the webhooks), or after changing a
workspace's time zone (a message's day is fixed when it is first counted)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from analytics.rollups import rollups_rebuild
from esp.models import Workspace


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = "Rebuild the report rollups of a workspace (or all) for a period (or all of it)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace", type=int, help="Workspace id (default: every workspace).")
        parser.add_argument("--since", type=_date, help="First day, YYYY-MM-DD, in the workspace's zone.")
        parser.add_argument("--until", type=_date, help="Last day, YYYY-MM-DD, in the workspace's zone.")

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = options["since"], options["until"]
        if since and until and since > until:
            raise CommandError("--since is after --until.")
        workspaces = Workspace.objects.order_by("pk")
        if options["workspace"] is not None:
            workspaces = workspaces.filter(pk=options["workspace"])
            if not workspaces.exists():
                raise CommandError(f"No workspace {options['workspace']}.")
        for workspace in workspaces:
            rows = rollups_rebuild(workspace=workspace, since=since, until=until)
            self.stdout.write(f"{workspace.name} ({workspace.pk}): {rows} rollup rows")
