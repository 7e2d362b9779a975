"""Rebuild the purchase facts of a whole workspace from its order events, then score it (RFM,
lifecycle stages and the figures of the RFM and lifecycle pages), as the nightly job does.

    manage.py facts_rebuild --workspace 12 [--batch 5000] [--no-score]
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audiences.facts import customer_scores_refresh, purchase_facts_rebuild
from esp.models import Workspace


class Command(BaseCommand):
    help = "Recompute the purchase facts of every contact of a workspace (in batches), then score it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace", type=int, required=True, help="the workspace id")
        parser.add_argument("--batch", type=int, default=5_000, help="contacts per statement (default 5000)")
        parser.add_argument("--no-score", action="store_true", help="only the facts, no RFM / lifecycle run")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace_id = options["workspace"]
        if not Workspace.objects.filter(pk=workspace_id).exists():
            raise CommandError(f"No workspace {workspace_id}.")
        if not 1 <= options["batch"] <= 100_000:
            raise CommandError("--batch must be between 1 and 100000.")
        start = time.monotonic()

        def progress(visited: int) -> None:
            self.stdout.write(f"  {visited:,} contacts ({time.monotonic() - start:.0f} s)")

        visited = purchase_facts_rebuild(workspace_id=workspace_id, batch_size=options["batch"], progress=progress)
        self.stdout.write(f"facts of {visited:,} contacts recomputed in {time.monotonic() - start:.1f} s")
        if not options["no_score"]:
            result = customer_scores_refresh(workspace_id=workspace_id)
            self.stdout.write(f"{result.scored:,} customers scored, {result.stages_changed:,} stages changed")
