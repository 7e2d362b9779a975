"""Build the RecentEvent rows of a workspace from all its events, so that segment conditions
"did X at least N times in the last D days" read them; the pipeline keeps them from then on.
Run it again after loading events by any other path than the tracking API.

    manage.py recent_events_rebuild --workspace 12 [--batch 20000]
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
        parser.add_argument("--batch", type=int, default=20_000, help="contacts per statement (default 20000)")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace_id = options["workspace"]
        if not Workspace.objects.filter(pk=workspace_id).exists():
            raise CommandError(f"No workspace {workspace_id}.")
        if not 1 <= options["batch"] <= 1_000_000:
            raise CommandError("--batch must be between 1 and 1000000.")
        start = time.monotonic()

        def progress(rows: int) -> None:
            self.stdout.write(f"  {rows:,} rows ({time.monotonic() - start:.0f} s)")

        rows = recent_events_rebuild(workspace_id=workspace_id, batch_size=options["batch"], progress=progress)
        self.stdout.write(f"{rows:,} rows built in {time.monotonic() - start:.1f} s")
