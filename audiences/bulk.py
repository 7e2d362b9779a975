"""Bulk actions of the contacts page: tag, untag, add to a list, unsubscribe from it, delete.

    contacts_bulk_apply(workspace=ws, contact_ids=[…], action="tag", value="vip")   # ticked: at once
    job = bulk_job_create(workspace=ws, user=u, contact_filter=f, action="tag", value="vip")
    bulk_job_run(job.pk)                                    # the worker (task audiences.run_bulk_action)

"All matching the filter" always runs as a job (a million contacts would outlast the request):
the request only checks the input and queues the job. The job writes the matching ids once,
then acts on them in batches of BULK_BATCH by id, each batch one transaction of set-based
statements that also records the progress (see BulkJob).

Deleting goes through a confirmation that says how much goes with the contacts
(deletion_summary). Other layers add to it, and detach their own rows from the contacts before
they go, through DELETE_COUNTERS and CONTACTS_DELETING (audiences imports no higher layer)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import CASCADE, F, Func, Model, QuerySet, Value
from django.db.models.functions import Now
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences import hooks
from audiences.filters import ContactFilter, contact_filter_check, contacts_matching
from audiences.jobs.machinery import job_claim, job_heartbeat, jobs_stalled_requeue
from audiences.models import (
    BulkAction,
    BulkJob,
    BulkJobContact,
    ConsentSource,
    Contact,
    Event,
    JobStatus,
    MailingList,
    SegmentMembership,
)
from audiences.segments.services import (
    segment_memberships_forget,
    segments_contacts_changed,
    segments_workspace_changed,
)
from esp.input import parse_id
from esp.models import User, Workspace
from esp.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

BULK_BATCH = 5_000
# The confirmation page counts what goes with the contacts exactly up to here, and above it
# gives the planner's estimate: an exact count of ten million events would keep it waiting.
COUNT_CAP = 1_000

# (workspace_id, contact ids) -> None: run in the transaction that deletes these contacts,
# before the DELETE (e.g. campaigns keeps their messages and unlinks them).
CONTACTS_DELETING: list[Callable[[int, list[int]], None]] = []
# (workspace_id, contacts queryset) -> (label, queryset of the rows): what else the deletion
# touches, for the confirmation page.
DELETE_COUNTERS: list[Callable[[int, QuerySet[Contact]], tuple[str, QuerySet[Any]]]] = []


def bulk_value_clean(*, workspace: Workspace, action: str, value: str) -> str:
    """The tag or list id an action needs, checked. Raises ValidationError by field (`value`
    for a tag, `list_value` for a list); another workspace's list is not found."""
    if action not in BulkAction.values:
        raise ValidationError({"action": _("Unknown action.")})
    value = (value or "").strip()
    if action in (BulkAction.TAG, BulkAction.UNTAG):
        if not value:
            raise ValidationError({"value": _("Name the tag.")})
        if len(value) > 64:
            raise ValidationError({"value": _("A tag has at most 64 characters.")})
    elif action in (BulkAction.SUBSCRIBE, BulkAction.UNSUBSCRIBE):
        if parse_id(value) is None or not MailingList.objects.in_workspace(workspace).filter(pk=int(value)).exists():
            raise ValidationError({"list_value": _("Choose a list.")})
    else:
        value = ""
    return value


# --- the set-based statements, on named contacts ---------------------------------------------


def _apply(workspace: Workspace, ids: list[int], action: str, value: str, source: str = ConsentSource.ADMIN) -> int:
    """Run one action on these contacts (ids already of this workspace, or not found).
    Returns how many changed (or were deleted). Call inside a transaction. `source` is what
    the consent records of a list action name as its cause."""
    contacts = Contact.objects.in_workspace(workspace).filter(pk__in=ids)
    if action == BulkAction.TAG:
        return contacts.exclude(tags__contains=[value]).update(
            tags=Func("tags", Value(value), function="array_append"), updated_at=Now()
        )
    if action == BulkAction.UNTAG:
        return contacts.filter(tags__contains=[value]).update(
            tags=Func("tags", Value(value), function="array_remove"), updated_at=Now()
        )
    if action in (BulkAction.SUBSCRIBE, BulkAction.UNSUBSCRIBE):
        mailing_list = get_object_or_404(MailingList.objects.in_workspace(workspace), pk=int(value))
        return _bulk_subscription(workspace, mailing_list, ids, subscribe=action == BulkAction.SUBSCRIBE, source=source)
    if action == BulkAction.DELETE:
        ids = list(contacts.values_list("pk", flat=True))
        if not ids:
            return 0
        for detach in CONTACTS_DELETING:
            detach(workspace.pk, ids)
        segment_memberships_forget(workspace_id=workspace.pk, contacts=Contact.objects.filter(pk__in=ids))
        # Set-based, table by table (Django's delete() would walk the relations in Python).
        for related in _cascaded_models():
            related.objects.filter(workspace=workspace, contact_id__in=ids)._raw_delete(related.objects.db)  # type: ignore[attr-defined]
        deleted = Contact.objects.filter(workspace=workspace, pk__in=ids)
        count = int(deleted._raw_delete(deleted.db))  # type: ignore[attr-defined]
        hooks.contacts_erased.fire(hooks.ContactsErased(workspace.pk, tuple(ids)))
        return count
    raise ValidationError({"action": _("Unknown action.")})


def _cascaded_models() -> list[type[Model]]:
    """The audience's tables whose rows go with their contact (on_delete=CASCADE), read from the
    models so a new one cannot be forgotten here; segment memberships are left to
    segment_memberships_forget (it keeps the counts), rows of higher layers to CONTACTS_DELETING."""
    found: list[type[Model]] = []
    for relation in Contact._meta.get_fields(include_hidden=True):
        model = relation.related_model
        is_reverse = relation.auto_created and not relation.concrete
        if not (is_reverse and isinstance(model, type) and issubclass(model, Model)):
            continue
        if getattr(relation, "on_delete", None) is CASCADE and model._meta.app_label == Contact._meta.app_label:
            found.append(model)
    return [model for model in found if model is not SegmentMembership]


def _bulk_subscription(
    workspace: Workspace, mailing_list: MailingList, ids: list[int], *, subscribe: bool, source: str
) -> int:
    """Admin subscribe adds contacts as subscribed (suppressed addresses and earlier
    unsubscribes are left out); unsubscribe flips subscribed/pending ones. Both record consent
    and tell the layers above (list-join triggers, series that end on an unsubscribe)."""
    now = timezone.now()
    params: dict[str, Any] = {"ws": workspace.pk, "list": mailing_list.pk, "now": now, "ids": ids, "source": source}
    if subscribe:
        sql = """
            WITH changed AS (
                INSERT INTO audiences_subscription
                    (workspace_id, contact_id, mailing_list_id, status, created_at, confirmed_at, updated_at)
                SELECT %(ws)s, c.id, %(list)s, 'subscribed', %(now)s, %(now)s, %(now)s FROM audiences_contact c
                WHERE c.id = ANY(%(ids)s) AND c.workspace_id = %(ws)s AND NOT EXISTS (
                    SELECT 1 FROM audiences_suppression sp WHERE sp.workspace_id = c.workspace_id
                      AND sp.email_hash = encode(sha256(convert_to(lower(c.email), 'UTF8')), 'hex'))
                ON CONFLICT (mailing_list_id, contact_id) DO NOTHING
                RETURNING contact_id
            )
            INSERT INTO audiences_consentrecord
                (workspace_id, contact_id, mailing_list_id, action, source, occurred_at, user_agent, text_shown)
            SELECT %(ws)s, contact_id, %(list)s, 'subscribed', %(source)s, %(now)s, '', '' FROM changed
            RETURNING contact_id
        """
    else:
        sql = """
            WITH changed AS (
                UPDATE audiences_subscription SET status = 'unsubscribed', unsubscribed_at = %(now)s,
                    updated_at = %(now)s
                WHERE workspace_id = %(ws)s AND mailing_list_id = %(list)s AND status <> 'unsubscribed'
                  AND contact_id = ANY(%(ids)s)
                RETURNING contact_id
            )
            INSERT INTO audiences_consentrecord
                (workspace_id, contact_id, mailing_list_id, action, source, occurred_at, user_agent, text_shown)
            SELECT %(ws)s, contact_id, %(list)s, 'unsubscribed', %(source)s, %(now)s, '', '' FROM changed
            RETURNING contact_id
        """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        changed = hooks.ids([row[0] for row in cursor.fetchall()])
    if not changed:
        return 0
    if subscribe:
        hooks.contacts_subscribed.fire(hooks.ContactsSubscribed(workspace.pk, changed, mailing_list.pk))
    else:
        hooks.contacts_unsubscribed.fire(hooks.ContactsUnsubscribed(workspace.pk, changed, mailing_list.pk))
    return len(changed)


@transaction.atomic
def contacts_bulk_apply(
    *, workspace: Workspace, contact_ids: list[int], action: str, value: str = "", source: str = ConsentSource.ADMIN
) -> int:
    """One action on the ticked contacts (a page of them at most), at once. Returns how many
    changed (or were deleted). Raises ValidationError by field. `source`: who acted, for the
    consent records of a list action (a member, or a series' step)."""
    value = bulk_value_clean(workspace=workspace, action=action, value=value)
    ids = sorted({int(i) for i in contact_ids})
    count = _apply(workspace, ids, action, value, source)
    if action != BulkAction.DELETE:
        segments_contacts_changed(workspace_id=workspace.pk, contact_ids=ids)
    return count


# --- the confirmation of a deletion ---------------------------------------------------------


@dataclass(frozen=True)
class DeletionPart:
    label: str
    count: int
    estimated: bool  # more than COUNT_CAP: the planner's estimate ("about")


@dataclass(frozen=True)
class DeletionSummary:
    contacts: int
    parts: list[DeletionPart]


def _count(queryset: QuerySet[Any], cap: int) -> tuple[int, bool]:
    """Exact up to `cap` (a LIMIT lets it stop early), else the planner's estimate."""
    exact = queryset.order_by().values("pk")[: cap + 1].count()
    if exact <= cap:
        return exact, False
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return max(int(plan[0]["Plan"]["Plan Rows"]), cap + 1), True


def deletion_summary(*, workspace: Workspace, contacts: QuerySet[Contact], cap: int = COUNT_CAP) -> DeletionSummary:
    """How many contacts a deletion takes (exactly) and what goes with them (events, …:
    exactly up to `cap`, estimated above)."""
    ids = contacts.order_by().values("pk")
    related: list[tuple[str, QuerySet[Any]]] = [
        (str(_("Events (page views, orders, …)")), Event.objects.filter(workspace_id=workspace.pk, contact_id__in=ids))
    ]
    related += [counter(workspace.pk, contacts) for counter in DELETE_COUNTERS]
    parts = [DeletionPart(label, *_count(queryset, cap)) for label, queryset in related]
    return DeletionSummary(contacts.count(), parts)


# --- jobs: everything a filter matches ------------------------------------------------------


ACTION_DONE: dict[str, Any] = {
    BulkAction.TAG: gettext_lazy("tagged"),
    BulkAction.UNTAG: gettext_lazy("untagged"),
    BulkAction.SUBSCRIBE: gettext_lazy("added to the list"),
    BulkAction.UNSUBSCRIBE: gettext_lazy("unsubscribed"),
    BulkAction.DELETE: gettext_lazy("deleted"),
}


def bulk_jobs(*, workspace: Workspace) -> QuerySet[BulkJob]:
    return BulkJob.objects.in_workspace(workspace).select_related("created_by")


def bulk_job_get(*, workspace: Workspace, job_id: int) -> BulkJob:
    return get_object_or_404(bulk_jobs(workspace=workspace), pk=job_id)  # type: ignore[no-any-return]


@transaction.atomic
def bulk_job_create(
    *, workspace: Workspace, user: User | None, contact_filter: ContactFilter, action: str, value: str = ""
) -> BulkJob:
    """Queue the action on every contact the filter matches. Only checks and queues: the
    request that calls it stays instant whatever the number of contacts. Raises
    ValidationError by field."""
    value = bulk_value_clean(workspace=workspace, action=action, value=value)
    contact_filter_check(workspace=workspace, contact_filter=contact_filter)
    job = BulkJob.objects.create(
        workspace=workspace,
        created_by=user,
        action=action,
        value=value,
        filter=contact_filter.to_data(),
        status=JobStatus.QUEUED,
        heartbeat_at=timezone.now(),
    )
    from audiences.tasks import run_bulk_action

    enqueue_after_commit(run_bulk_action, job.pk)
    return job


def bulk_jobs_resume_stalled() -> int:
    """Queue again the bulk jobs whose worker died or whose task was lost."""
    from audiences.tasks import run_bulk_action

    ids = jobs_stalled_requeue(BulkJob)
    for job_id in ids:
        enqueue_after_commit(run_bulk_action, job_id)
    return len(ids)


class _LostClaim(Exception):
    pass


def _update(job: BulkJob, **values: Any) -> None:
    if not BulkJob.objects.filter(pk=job.pk, attempts=job.attempts).update(heartbeat_at=timezone.now(), **values):
        raise _LostClaim


def bulk_job_run(job_id: int) -> BulkJob | None:
    """Run (or resume) a bulk job; what task `audiences.run_bulk_action` calls. Returns the
    job as it ended, or None when there was nothing for this worker to do."""
    job = job_claim(BulkJob, job_id)
    if job is None:
        return None
    try:
        with job_heartbeat(BulkJob, job):
            _run(job)
    except _LostClaim:
        logger.warning("bulk job %s was taken over by another worker", job_id)
        return None
    except (OperationalError, InterfaceError):
        raise  # left running; the stalled-job sweep queues it again once its heartbeat is stale
    except Exception:
        logger.exception("bulk job %s failed", job_id)
        BulkJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
            status=JobStatus.FAILED,
            error_message=_("The action stopped on an unexpected error; the contacts done so far keep it."),
            finished_at=timezone.now(),
        )
        BulkJobContact.objects.filter(job_id=job.pk).delete()  # the rest will not be acted on
        if job.action != BulkAction.DELETE:
            # The batches done changed tags or lists: segments follow them as after a whole run.
            segments_workspace_changed(workspace_id=job.workspace_id)
    return BulkJob.objects.get(pk=job_id)


def _run(job: BulkJob) -> None:
    workspace = job.workspace
    if not job.snapshot_taken:
        matching = contacts_matching(workspace=workspace, contact_filter=ContactFilter.from_data(job.filter))
        contact_sql, params = matching.order_by().values("pk").query.sql_with_params()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {BulkJobContact._meta.db_table} (job_id, contact_id) "  # noqa: S608
                    f"SELECT %s, pk FROM ({contact_sql}) AS matching (pk)",
                    [job.pk, *params],
                )
                total = cursor.rowcount
            _update(job, snapshot_taken=True, total_rows=total)
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # The next batch leaves the list in the transaction that acts on it.
                cursor.execute(
                    f"""
                    DELETE FROM {BulkJobContact._meta.db_table} WHERE id IN (
                        SELECT id FROM {BulkJobContact._meta.db_table} WHERE job_id = %s
                        ORDER BY contact_id LIMIT %s)
                    RETURNING contact_id
                    """,  # noqa: S608 — the table name is the model's own
                    [job.pk, BULK_BATCH],
                )
                ids = sorted(row[0] for row in cursor.fetchall())
            if not ids:
                break
            changed = _apply(workspace, ids, job.action, job.value)
            _update(job, processed_rows=F("processed_rows") + len(ids), changed_count=F("changed_count") + changed)
    with transaction.atomic():
        _update(job, status=JobStatus.DONE, finished_at=timezone.now())
        if job.action != BulkAction.DELETE:
            segments_workspace_changed(workspace_id=workspace.pk)
