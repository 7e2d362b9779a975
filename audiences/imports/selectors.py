"""Reads of imports: the jobs of a workspace, the fields a column can be mapped to, the error
report, and the preview of an uploaded file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from audiences.imports.mapping import ATTRIBUTE_PREFIX, CONTACT_TARGETS, suggest_mapping
from audiences.jobs.machinery import JobFile, media_path
from audiences.models import Contact, CustomField, ImportJob
from esp.models import Workspace


class ImportPreview(NamedTuple):
    header: list[str]
    rows: list[list[str]]
    mapping: dict[str, str]  # the job's mapping once started, else one suggested by column names


def import_list(*, workspace: Workspace) -> QuerySet[ImportJob]:
    return ImportJob.objects.in_workspace(workspace).select_related("mailing_list", "created_by")


def import_get(*, workspace: Workspace, job_id: int) -> ImportJob:
    """The job, or 404 when it is not this workspace's."""
    return get_object_or_404(import_list(workspace=workspace), pk=job_id)  # type: ignore[no-any-return]


def import_targets(*, workspace: Workspace) -> list[tuple[str, str]]:
    """(value, label) of every field a column can be mapped to, for the mapping form; the
    empty value means "ignore this column"."""
    targets = [("", _("— ignore —"))]
    targets += [
        (name, str(getattr(Contact._meta.get_field(name), "verbose_name", name)).capitalize())
        for name in CONTACT_TARGETS
    ]
    targets += [(ATTRIBUTE_PREFIX + f.key, f.label) for f in CustomField.objects.in_workspace(workspace)]
    return targets


def import_error_report(job: ImportJob) -> JobFile:
    """The CSV of rejected rows: line, email, reason, then the row's original columns."""
    path = media_path(job.error_report) if job.error_report else None
    if path is None or not path.exists():
        raise Http404(_("This import has no error report."))
    return JobFile(path, f"{Path(job.original_filename).stem}-errors.csv")


def import_preview(job: ImportJob, rows: int = 5) -> ImportPreview:
    """The header and the first `rows` data rows as the import will read them, with the
    mapping to show in the form."""
    first: list[list[str]] = []
    with media_path(job.file_path).open(encoding=job.encoding, errors="replace", newline="") as stream:
        reader = csv.reader(stream, delimiter=job.delimiter)
        next(reader, None)
        for record in reader:
            if len(first) >= rows:
                break
            if any(cell.strip() for cell in record):
                first.append((record + [""] * len(job.header))[: len(job.header)])
    fields = CustomField.objects.in_workspace(job.workspace)
    return ImportPreview(list(job.header), first, dict(job.mapping) or suggest_mapping(job.header, list(fields)))
