"""Lifecycle and RFM triggers: contacts whose stage or segment became the one a live series
waits for enroll, set-based, one INSERT … SELECT per series for the hook's batch."""

from __future__ import annotations

from collections.abc import Collection

from django.db import transaction

from audiences.models import Contact
from automations.engine.enroll import candidates_from_contacts, enrollments_insert
from automations.engine.events import live_series
from esp import clock

# The facts field a hook names -> the trigger type and the trigger's key that holds the value.
TRIGGERS = {"lifecycle_stage": ("lifecycle", "stage"), "rfm_segment": ("rfm", "segment")}


@transaction.atomic
def contacts_stage_changed(*, workspace_id: int, field: str, value: str, contact_ids: Collection[int]) -> list[int]:
    """Enroll these contacts in the live series whose trigger is `field` becoming `value`;
    the new enrollments (due now). A contact whose stage moved on again before this ran (the
    facts are read now) is left out."""
    if field not in TRIGGERS or not contact_ids:
        return []
    trigger_type, key = TRIGGERS[field]
    now = clock.now()
    due: list[int] = []
    for one in live_series(workspace_id, trigger_type):
        if one.trigger.get(key) != value:
            continue
        contacts = Contact.objects.filter(
            workspace_id=workspace_id, pk__in=list(contact_ids), **{f"facts__{field}": value}
        )
        sql, params = candidates_from_contacts(contacts, entry_data={field: value})
        due += enrollments_insert(one, sql, params, now)
    return due
