"""Writing a parsed batch: the upsert, the error report of rejected rows, and the job's counts and
resume offset, committed together."""

from __future__ import annotations

import csv
import io
import os
from typing import IO

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from audiences.contacts import CREATED, REJECTED, UNCHANGED, UPDATED, contacts_upsert
from audiences.imports.mapping import _Plan
from audiences.imports.parsing import _Parsed, _unpack
from audiences.jobs.machinery import media_path, safe_cell
from audiences.models import ImportJob, ImportMode, MailingList, normalise_email


class _LostClaim(Exception):
    """Another worker took the job over (this one was presumed dead): stop without writing."""


class _ErrorReport:
    """The rejected rows, appended batch by batch. Opened at the length the job committed, so
    lines a dead worker wrote after its last commit are cut off and written again."""

    def __init__(self, job: ImportJob) -> None:
        self.relative = job.error_report or job.file_path.removesuffix(".csv") + ".errors.csv"
        self.committed = job.error_report_size
        self.header = ["line", "email", "reason", *job.header]
        self._raw: IO[bytes] | None = None
        self._text: io.TextIOWrapper | None = None

    def write(self, errors: list[tuple[int, str, str, list[str]]]) -> int:
        """Append the rows (line, email, reason, original cells); returns the file's length."""
        if not errors:
            return self.committed
        if self._text is None:
            path = media_path(self.relative)
            fresh = self.committed == 0 or not path.exists()
            self._raw = path.open("w+b" if fresh else "r+b")
            self._raw.truncate(self.committed)
            self._raw.seek(self.committed)
            # UTF-8 with a BOM: Excel opens it with the right (Cyrillic) letters.
            self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig" if fresh else "utf-8", newline="")
            self._writer = csv.writer(self._text)
            if fresh:
                self._writer.writerow(self.header)
        self._writer.writerows(
            [str(line), safe_cell(email), reason, *[safe_cell(cell) for cell in cells]]
            for line, email, reason, cells in errors
        )
        self._text.flush()
        assert self._raw is not None
        os.fsync(self._raw.fileno())
        return self._raw.tell()

    def close(self) -> None:
        if self._text is not None:
            self._text.close()


def _write_batch(
    job: ImportJob, plan: _Plan, parsed: _Parsed, mailing_list: MailingList | None, report: _ErrorReport
) -> None:
    """Upsert the batch, report its rejected rows and record its counts and the new resume
    offset: all in one transaction, so a crash leaves either all of it or none."""
    counts = dict.fromkeys((CREATED, UPDATED, UNCHANGED, REJECTED), 0)
    errors = parsed.errors
    with transaction.atomic():
        # The batch and the job's counts and offset commit together, so a commit lost in a
        # database crash loses both and the resumed run redoes the batch: no need to wait for
        # the WAL flush of every batch.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        if parsed.staged is not None:
            outcomes = contacts_upsert(
                workspace=job.workspace,
                rows=parsed.staged,
                update_existing=job.mode == ImportMode.UPDATE_EXISTING,
                source="import",
                mailing_list=mailing_list,
                consent_source=job.consent_source,
                consent_text=job.consent_text,
            )
            for index, outcome in enumerate(outcomes):
                counts[outcome.status] += 1
                if outcome.status == REJECTED:
                    cells = _unpack(parsed.cells[index])
                    # The address as parse_contact normalised it from this very cell.
                    email = normalise_email(cells[plan.email]) if plan.email < len(cells) else ""
                    errors.append((parsed.lines[index], email, outcome.error, cells))
        errors.sort(key=lambda error: error[0])
        size = report.write(errors)
        handled = parsed.records - parsed.blank
        written = ImportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
            resume_offset=F("resume_offset") + parsed.records,
            processed_rows=F("processed_rows") + handled,
            total_rows=Greatest(F("total_rows"), F("processed_rows") + handled),
            created_count=F("created_count") + counts[CREATED],
            updated_count=F("updated_count") + counts[UPDATED],
            unchanged_count=F("unchanged_count") + counts[UNCHANGED],
            rejected_count=F("rejected_count") + len(errors),
            error_report=report.relative if size else "",
            error_report_size=size,
            heartbeat_at=timezone.now(),
        )
        if not written:
            raise _LostClaim
    report.committed = size
