"""The demo shop's reports: seeded by `manage.py seed_demo` after every other app's demo data,
so the rollups hold the demo's months of mail at once (the beat keeps them fresh after)."""

from __future__ import annotations

from analytics.rollups import rollups_rebuild
from esp.models import Workspace


def seed(workspace: Workspace) -> None:
    rollups_rebuild(workspace=workspace)
