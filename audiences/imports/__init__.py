"""CSV imports of contacts, in four steps a page can take one by one:

    job = import_create(workspace=ws, user=user, uploaded_file=request.FILES["file"])
    preview = import_preview(job)              # header, first rows, suggested mapping
    import_start(workspace=ws, job_id=job.pk, mapping=..., list_id=..., mode=..., ...)
    import_get(workspace=ws, job_id=...)       # progress: status, processed_rows/total_rows, counts

The worker (task `audiences.run_import`) calls `import_run`: it streams the file with the csv
module in batches, judges each row with `parse_contact` and writes each batch with
`contacts_upsert` (COPY + set-based upsert); a reader process (forked; a thread where no
process can be) prepares the next batches while the database writes the current one; with
two cores or more, two reader processes judge alternate batches. Each
batch commits together with the job's counts and its resume offset, so the page sees progress
and a run that died resumes where the last commit left off (the upsert is idempotent by
email). Memory stays flat in the file's size: at most a few batches are in memory (per reader
one read and two waiting, and the one written), and rejected rows go straight to the error report on disk.

The package, one concern a module: `formats` (encoding, delimiter, header of an upload),
`mapping` (where a column can go, suggestions, checks), `parsing` (batches judged by
parse_contact), `readers` (forked reader processes, read-ahead), `writer` (batch writes and the
error report), `run` (the job run), `services` (upload, start, resume) and `selectors`
(jobs, targets, preview, error report). What pages, tasks and tests call is importable from
here."""

from audiences.imports.mapping import ATTRIBUTE_PREFIX, CONTACT_TARGETS, suggest_mapping
from audiences.imports.run import import_run
from audiences.imports.selectors import (
    ImportPreview,
    import_error_report,
    import_get,
    import_list,
    import_preview,
    import_targets,
)
from audiences.imports.services import import_create, import_start, imports_resume_stalled

__all__ = [
    "ATTRIBUTE_PREFIX",
    "CONTACT_TARGETS",
    "ImportPreview",
    "import_create",
    "import_error_report",
    "import_get",
    "import_list",
    "import_preview",
    "import_run",
    "import_start",
    "import_targets",
    "imports_resume_stalled",
    "suggest_mapping",
]
