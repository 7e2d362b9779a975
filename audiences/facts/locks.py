"""The workspace advisory lock shared by fact refreshes (shared) and workspace-wide scoring,
lifecycle refreshes and rebuilds (exclusive)."""

from __future__ import annotations

from django.db.backends.utils import CursorWrapper

# Advisory-lock namespaces (first key of pg_advisory_xact_lock(int, int)).
LOCK_WORKSPACE = 4_102  # shared by fact refreshes, exclusive for workspace-wide scoring


def lock_key(value: int) -> int:
    return int(value) % 2_147_483_647


def workspace_lock(cursor: CursorWrapper, workspace_id: int) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_WORKSPACE, lock_key(workspace_id)])
