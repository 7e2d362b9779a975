"""Build the RecentEvent rows of a workspace from all its events, so that segment conditions
"did X at least N times in the last D days" read them; the pipeline keeps them from then on.
Run it again after loading events by any other path than the tracking API.

    manage.py recent_events_rebuild --workspace 12
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audiences.recent_events import recent_events_rebuild
from esp.models import Workspace


class Command(BaseCommand):
    help = "Build the most-recent-events table of a workspace (used by segment event conditions)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace", type=int, required=True, help="the workspace id")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace_id = options["workspace"]
        if not Workspace.objects.filter(pk=workspace_id).exists():
            raise CommandError(f"No workspace {workspace_id}.")
        start = time.monotonic()

        def progress(name: str, rows: int) -> None:
            self.stdout.write(f"  {name}: {rows:,} rows so far ({time.monotonic() - start:.0f} s)")

        rows = recent_events_rebuild(workspace_id=workspace_id, progress=progress)
        self.stdout.write(f"{rows:,} rows built in {time.monotonic() - start:.1f} s")
