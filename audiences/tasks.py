"""Celery entry points of the audiences app: take ids, re-read rows, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="audiences.send_confirmation_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_confirmation_email(subscription_id: int) -> None:
    from audiences.services import subscription_confirmation_send

    subscription_confirmation_send(subscription_id=subscription_id)


# --- imports, exports and bulk actions: thin entry points; the job rows hold the state (audiences/models/jobs.py) ---


@shared_task(name="audiences.run_import")
def run_import(job_id: int) -> None:
    from audiences.imports.run import import_run

    import_run(job_id)


@shared_task(name="audiences.run_export")
def run_export(job_id: int) -> None:
    from audiences.exports import export_run

    export_run(job_id)


@shared_task(name="audiences.resume_stalled_imports")
def resume_stalled_imports() -> None:
    """For beat, every minute or so: imports whose worker died are queued again."""
    from audiences.imports.services import imports_resume_stalled

    imports_resume_stalled()


@shared_task(name="audiences.resume_stalled_exports")
def resume_stalled_exports() -> None:
    from audiences.exports import exports_resume_stalled

    exports_resume_stalled()


@shared_task(name="audiences.run_bulk_action")
def run_bulk_action(job_id: int) -> None:
    from audiences.bulk import bulk_job_run

    bulk_job_run(job_id)


@shared_task(name="audiences.resume_stalled_bulk_actions")
def resume_stalled_bulk_actions() -> None:
    from audiences.bulk import bulk_jobs_resume_stalled

    bulk_jobs_resume_stalled()


# --- purchase facts: RFM scores and lifecycle stages (audiences/facts.py) ---


@shared_task(name="audiences.score_rfm")
def score_rfm(workspace_id: int) -> None:
    """RFM scores and lifecycle stages of one workspace (the RFM page's button, and the
    nightly fan-out below)."""
    from audiences.facts import customer_scores_refresh

    customer_scores_refresh(workspace_id=workspace_id)


@shared_task(name="audiences.score_rfm_all")
def score_rfm_all() -> None:
    """For beat, nightly: one score_rfm per workspace that has customers."""
    from audiences.facts import scoring_request_all

    scoring_request_all()


@shared_task(name="audiences.refresh_lifecycle")
def refresh_lifecycle(workspace_id: int) -> None:
    """Lifecycle stages of one workspace again, after its thresholds changed."""
    from audiences.facts import lifecycle_stages_apply

    lifecycle_stages_apply(workspace_id=workspace_id)


# --- ingested events (audiences.ingest -> audiences.pipeline) ---


@shared_task(name="audiences.process_events")
def process_events(pending_id: int) -> None:
    """Downstream work of one ingest request: identity merge, purchase facts, segments."""
    from audiences.pipeline import pending_events_process

    pending_events_process(pending_id=pending_id)


@shared_task(name="audiences.sweep_pending_events")
def sweep_pending_events() -> None:
    """For beat, every minute: processing that was never sent (broker down) or never finished."""
    from audiences.pipeline import pending_events_sweep

    pending_events_sweep()


# --- segments: materialised membership (audiences/segments/membership.py) ---------------------


@shared_task(name="audiences.refresh_segment")
def refresh_segment(segment_id: int) -> None:
    from audiences.segments.membership import segment_refresh

    segment_refresh(segment_id=segment_id)


@shared_task(name="audiences.refresh_segments")
def refresh_segments(workspace_id: int | None = None) -> None:
    """For beat, every 15 minutes: segments that are due (time-relative rules, changed, stale)
    each get a refresh_segment. With a workspace id: all of that workspace's segments."""
    from audiences.segments.membership import segments_refresh_due

    segments_refresh_due(workspace_id=workspace_id)


@shared_task(name="audiences.refresh_contact_segments")
def refresh_contact_segments(workspace_id: int, contact_ids: list[int]) -> None:
    from audiences.segments.membership import segments_refresh_contacts

    segments_refresh_contacts(workspace_id=workspace_id, contact_ids=contact_ids)
