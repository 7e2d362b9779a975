"""Writes for segments: save (validated rules, then a refresh after commit), delete, ask for a
refresh; and the hooks other services call when contacts change, so memberships follow."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import Contact, Segment
from audiences.segments.compiler import validate_rules
from esp.models import Workspace
from esp.plurals import at_most_characters
from esp.queue import enqueue_after_commit

MAX_NAME = 120


def prefixed(error: ValidationError, prefix: str = "rules") -> ValidationError:
    """Rule errors keyed "rules.conditions[0].operator", beside a form's other fields."""
    return ValidationError(
        {f"{prefix}.{path}" if path != prefix else path: m for path, m in error.message_dict.items()}
    )


@transaction.atomic
def segment_save(
    *, workspace: Workspace, name: str, rules: dict[str, Any], description: str = "", segment_id: int | None = None
) -> Segment:
    """Create or change a segment. Raises ValidationError naming each bad field ("name",
    "rules.conditions[2].value", ...). Its membership is refreshed by a task after commit."""
    segments = Segment.objects.in_workspace(workspace)
    segment = get_object_or_404(segments.select_for_update(), pk=segment_id) if segment_id else Segment()
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("A segment needs a name.")]
    elif len(name) > MAX_NAME:
        errors["name"] = [at_most_characters(MAX_NAME)]
    elif segments.filter(name__iexact=name).exclude(pk=segment.pk).exists():
        errors["name"] = [_("A segment with this name exists already.")]
    try:
        cleaned = validate_rules(workspace=workspace, rules=rules)
    except ValidationError as error:
        errors.update(prefixed(error).message_dict)
    if errors:
        raise ValidationError(errors)
    segment.workspace = workspace
    segment.name = name
    segment.description = (description or "").strip()
    segment.rules = cleaned
    segment.updated_at = timezone.now()
    segment.save()
    _enqueue_refresh(segment.pk)
    return segment


@transaction.atomic
def segment_delete(*, workspace: Workspace, segment_id: int) -> None:
    # Memberships go with it (a single DELETE: they have no relations of their own).
    get_object_or_404(Segment.objects.in_workspace(workspace), pk=segment_id).delete()


@transaction.atomic
def segment_refresh_request(*, workspace: Workspace, segment_id: int) -> Segment:
    """Ask for a full refresh now. refreshed_at is cleared, which the pages show as
    "refreshing" until the task has run (see Segment.refresh_pending in selectors)."""
    segment = get_object_or_404(Segment.objects.in_workspace(workspace).select_for_update(), pk=segment_id)
    segment.refreshed_at = None
    segment.save(update_fields=["refreshed_at"])
    _enqueue_refresh(segment.pk)
    return segment


def _enqueue_refresh(segment_id: int) -> None:
    from audiences.tasks import refresh_segment

    enqueue_after_commit(refresh_segment, segment_id)


# --- hooks for the services that change contacts ---------------------------------------------


def segments_contacts_changed(*, workspace_id: int, contact_ids: Collection[int | None]) -> None:
    """These contacts' fields, lists, tags or consent changed: once committed, their
    memberships of every segment of the workspace are brought up to date."""
    from audiences.tasks import refresh_contact_segments

    ids = sorted({int(i) for i in contact_ids if i})
    if ids:
        enqueue_after_commit(refresh_contact_segments, workspace_id, ids)


def segments_workspace_changed(*, workspace_id: int) -> None:
    """Too many contacts changed to name them (a bulk action on a filter): refresh every
    segment of the workspace once committed."""
    from audiences.tasks import refresh_segments

    enqueue_after_commit(refresh_segments, workspace_id)


def segment_memberships_forget(*, workspace_id: int, contacts: QuerySet[Contact]) -> None:
    """Before contacts are deleted in bulk (raw, set-based): drop their memberships and take
    them off the segments' member counts. Two statements, whatever the number of contacts."""
    contact_sql, params = contacts.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH gone AS (
                DELETE FROM audiences_segmentmembership m
                WHERE m.workspace_id = %s AND m.contact_id IN ({contact_sql})
                RETURNING m.segment_id, m.exited_at
            ), counts AS (
                SELECT segment_id, count(*) AS n FROM gone WHERE exited_at IS NULL GROUP BY segment_id
            )
            UPDATE audiences_segment s SET member_count = GREATEST(s.member_count - counts.n, 0)
            FROM counts WHERE s.id = counts.segment_id
            """,  # noqa: S608 — the contact subquery is Django-compiled SQL with its own parameters
            [workspace_id, *params],
        )
