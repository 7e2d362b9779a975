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
one read and two waiting, and the one written), and rejected rows go straight to the error report on disk."""

from __future__ import annotations

import codecs
import collections
import csv
import gc
import io
import itertools
import logging
import os
import pickle
import queue
import re
import signal
import sys
import threading
import unicodedata
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar

import billiard
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences.contacts import (
    CREATED,
    REJECTED,
    UNCHANGED,
    UPDATED,
    ContactInput,
    StagedRows,
    contacts_stage,
    contacts_upsert,
    custom_fields_of,
    parse_contact,
)
from audiences.jobs.machinery import JobFile, job_claim, job_heartbeat, jobs_stalled_requeue, media_path, safe_cell
from audiences.models import (
    ConsentSource,
    Contact,
    CustomField,
    ImportJob,
    ImportMode,
    JobStatus,
    MailingList,
    normalise_email,
)
from audiences.segments.services import segments_workspace_changed
from esp.models import User, Workspace
from esp.queue import enqueue_after_commit

logger = logging.getLogger(__name__)

# Rows per batch: one COPY + upsert + progress commit each. Large enough that the per-batch
# SQL is cheap per row, small enough that progress moves every second or so (bench/README.md).
BATCH_ROWS = 10_000
SAMPLE_BYTES = 64 * 1024
READ_CHUNK = 1024 * 1024
MAX_COLUMNS = 500
DELIMITERS = ",;\t|"

# Where a CSV column can go. Custom fields are "attributes.<key>".
CONTACT_TARGETS = (
    "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city", "country",
    "time_zone", "locale", "tags",
)  # fmt: skip
ATTRIBUTE_PREFIX = "attributes."
IGNORE = ("", "ignore")


class ImportPreview(NamedTuple):
    header: list[str]
    rows: list[list[str]]
    mapping: dict[str, str]  # the job's mapping once started, else one suggested by column names


# --- selectors ------------------------------------------------------------------------------


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


# --- 1. upload ------------------------------------------------------------------------------


def import_create(*, workspace: Workspace, user: User | None, uploaded_file: File[Any]) -> ImportJob:
    """Store the upload under MEDIA_ROOT/imports/<workspace>/ (streamed in chunks, never read
    whole), detect its encoding and delimiter, read its header. Raises ValidationError
    ({"file": ...}) for a file that is not a readable CSV."""
    relative = f"imports/{workspace.pk}/{uuid.uuid4().hex}.csv"
    path = media_path(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = int(getattr(settings, "IMPORT_MAX_BYTES", 1024**3))
    try:
        size = 0
        with path.open("wb") as out:
            for chunk in uploaded_file.chunks():
                size += len(chunk)
                if size > limit:
                    raise ValidationError({"file": _("The file is larger than %(n)d MB.") % {"n": limit // 1024**2}})
                out.write(chunk)
        encoding = _detect_encoding(path)
        delimiter, header, estimate = _read_format(path, encoding, size)
        return ImportJob.objects.create(
            workspace=workspace,
            created_by=user,
            file_path=relative,
            original_filename=Path(uploaded_file.name or "contacts.csv").name[:255],
            file_size=size,
            encoding=encoding,
            delimiter=delimiter,
            header=header,
            total_rows=estimate,
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such; UTF-16 when it says so
    by its BOM; else Windows-1251 (Russian and Bulgarian Excel exports) or Latin-1."""
    with path.open("rb") as stream:
        head = stream.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        stream.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        utf8 = True
        sample = b""
        for chunk in iter(lambda: stream.read(READ_CHUNK), b""):
            if b"\x00" in chunk:
                raise ValidationError(
                    {"file": _("This is not a text CSV file (is it an Excel workbook? Save it as CSV first).")}
                )
            if len(sample) < READ_CHUNK:
                sample += chunk[: READ_CHUNK - len(sample)]
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        return "utf-8-sig"
    return "cp1251" if _looks_cyrillic(sample) else "latin-1"


_HIGH_RUN = re.compile(rb"[\x80-\xff]+")


def _looks_cyrillic(data: bytes) -> bool:
    """In Windows-1251 text every letter of a Cyrillic word is a high byte, so high bytes come
    in runs; accented letters of Latin-1 text mostly stand alone between ASCII letters."""
    runs = [len(run) for run in _HIGH_RUN.findall(data)]
    if not runs:
        return True
    try:
        data.decode("cp1251")
    except UnicodeDecodeError:  # 0x98 is the one byte Windows-1251 leaves undefined
        return False
    return sum(n for n in runs if n > 1) >= sum(runs) / 2


def _read_format(path: Path, encoding: str, size: int) -> tuple[str, list[str], int]:
    """Delimiter (csv.Sniffer over the first 64 KB), header, and a first estimate of the row
    count from the sample (exact when the whole file fits in it)."""
    with path.open("rb") as stream:
        raw = stream.read(SAMPLE_BYTES)
    whole = len(raw) >= size
    # A sample may end inside a character or a line: both are cut off.
    text = raw.decode(encoding, errors="replace" if whole else "ignore")
    if not whole and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    if not text.strip():
        raise ValidationError({"file": _("The file is empty.")})
    delimiter = _sniff_delimiter(text)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    records = [r for r in records if any(cell.strip() for cell in r)]
    if not records:
        raise ValidationError({"file": _("The file is empty.")})
    header = _clean_header(records[0])
    if len(header) > MAX_COLUMNS:
        raise ValidationError(
            {
                "file": ngettext(
                    "The file has more than %(n)d column.", "The file has more than %(n)d columns.", MAX_COLUMNS
                )
                % {"n": MAX_COLUMNS}
            }
        )
    data_rows = len(records) - 1
    if whole or data_rows == 0:
        return delimiter, header, data_rows
    return delimiter, header, int(data_rows * size / len(raw))


def _sniff_delimiter(text: str) -> str:
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    if delimiter in first_line and delimiter:
        return delimiter
    # The sniffer gives up on one-column files and is sometimes fooled by quoted text; the
    # header line then decides by the candidate it contains most often.
    counts = {candidate: first_line.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _clean_header(cells: list[str]) -> list[str]:
    """Column names that a mapping can name unambiguously: trimmed, none empty, none twice."""
    header: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells, start=1):
        name = cell.strip().lstrip("\ufeff").strip()[:200] or _("Column %(n)d") % {"n": index}
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name} ({n})"
        seen.add(unique)
        header.append(unique)
    return header


# --- 2. preview and mapping -----------------------------------------------------------------


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


def _norm(name: str) -> str:
    """A column name reduced for matching: "E-mail Address" -> "emailaddress", "Prénom" -> "prenom"."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return re.sub(r"[\W_]+", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


_SYNONYMS = {
    "email": "email emailaddress mail emails emailadresse correo correoelectronico courriel adresseemail почта "
    "электроннаяпочта адресэлектроннойпочты emailадрес емейл емэйл имейл имейладрес епоща електроннапоща "
    "мейл",
    "first_name": "firstname first givenname name forename fname vorname prenom nombre имя име собственоиме",
    "last_name": "lastname last surname familyname lname nachname nom apellido фамилия фамилно фамилноиме",
    "phone": "phone phonenumber mobile mobilephone tel telephone cell cellphone телефон мобильный номертелефона "
    "мобилен",
    "city": "city town ort ville ciudad город град населенныйпункт населеномясто",
    "country": "country countrycode land pays pais страна държава",
    "gender": "gender sex geschlecht пол",
    "birth_date": "birthdate birthday dateofbirth dob geburtsdatum датарождения деньрождения рождение "
    "датанараждане рожденден",
    "external_id": "externalid customerid userid clientid id customernumber номерклиента",
    "time_zone": "timezone tz часовойпояс часовапояс",
    "locale": "locale language lang sprache язык език",
    "tags": "tags tag labels теги метки тагове етикети",
}
SYNONYMS = {_norm(word): target for target, words in _SYNONYMS.items() for word in words.split()}


def suggest_mapping(header: list[str], fields: list[CustomField]) -> dict[str, str]:
    """Column -> field by the column's name: a field's own name, a common synonym in English,
    Russian or Bulgarian, or a custom field's key or label. Each field is suggested once."""
    by_name = dict(SYNONYMS)
    for field in fields:
        for name in (field.key, field.label, ATTRIBUTE_PREFIX + field.key):
            by_name.setdefault(_norm(name), ATTRIBUTE_PREFIX + field.key)
    for name in CONTACT_TARGETS:
        by_name[_norm(name)] = name
    mapping: dict[str, str] = {}
    for column in header:
        target = by_name.get(_norm(column), "")
        if target and target not in mapping.values():
            mapping[column] = target
    return mapping


def _check_mapping(job: ImportJob, mapping: dict[str, Any], fields: dict[str, CustomField]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    problems: list[str] = []
    allowed = set(CONTACT_TARGETS) | {ATTRIBUTE_PREFIX + key for key in fields}
    for column, target in mapping.items():
        target = str(target or "").strip()
        if target in IGNORE:
            continue
        if column not in job.header:
            problems.append(_("The file has no column %(column)r.") % {"column": column})
        elif target not in allowed:
            problems.append(_("Unknown field %(field)r for column %(column)r.") % {"field": target, "column": column})
        elif target in cleaned.values():
            problems.append(_("Two columns are mapped to %(field)s.") % {"field": target})
        else:
            cleaned[column] = target
    if "email" not in cleaned.values():
        problems.append(_("Choose the column that holds the email address."))
    if problems:
        raise ValidationError({"mapping": problems})
    return cleaned


# --- 3. start -------------------------------------------------------------------------------


@transaction.atomic
def import_start(
    *,
    workspace: Workspace,
    job_id: int,
    mapping: dict[str, Any],
    list_id: int | None = None,
    mode: str = ImportMode.UPDATE_EXISTING,
    consent_source: str = ConsentSource.IMPORT,
    consent_text: str = "",
) -> ImportJob:
    """Save the mapping and options and queue the job. `mapping` is {column: field} with the
    fields of `import_targets` (unmapped or "" columns are ignored); one column must be the
    email. With `list_id` every imported contact is subscribed to that list (never one who
    unsubscribed from it) and consent is recorded with `consent_source` and `consent_text`,
    which is then required. Raises ValidationError by field, Http404 for another workspace's
    job or list."""
    job = get_object_or_404(ImportJob.objects.in_workspace(workspace).select_for_update(), pk=job_id)
    if job.status != JobStatus.UPLOADED:
        raise ValidationError(_("This import has already been started."))
    errors: dict[str, str] = {}
    if mode not in ImportMode.values:
        errors["mode"] = _("Unknown mode.")
    if consent_source not in ConsentSource.values:
        errors["consent_source"] = _("Unknown consent source.")
    mailing_list = None
    if list_id:
        mailing_list = get_object_or_404(MailingList.objects.in_workspace(workspace), pk=list_id)
        if not consent_text.strip():
            errors["consent_text"] = _("Describe how these people agreed to receive this list's emails.")
    try:
        job.mapping = _check_mapping(job, mapping, custom_fields_of(workspace))
    except ValidationError as error:
        errors.update({key: " ".join(messages) for key, messages in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    job.mailing_list = mailing_list
    job.mode = mode
    job.consent_source = consent_source
    job.consent_text = consent_text.strip()
    job.status = JobStatus.QUEUED
    job.queued_at = job.heartbeat_at = now
    job.save()
    from audiences.tasks import run_import

    enqueue_after_commit(run_import, job.pk)
    return job


def imports_resume_stalled() -> int:
    """Queue again the imports whose worker died or whose task was lost (see job_claim)."""
    from audiences.tasks import run_import

    ids = jobs_stalled_requeue(ImportJob)
    for job_id in ids:
        enqueue_after_commit(run_import, job_id)
    return len(ids)


# --- 4. run (the worker) --------------------------------------------------------------------


class _LostClaim(Exception):
    """Another worker took the job over (this one was presumed dead): stop without writing."""


@dataclass(frozen=True)
class _Plan:
    """The mapping as column indexes, to turn one CSV record into parse_contact's input."""

    email: int
    standard: tuple[tuple[int, str], ...]  # besides the email
    attributes: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, job: ImportJob) -> _Plan:
        index = {name: i for i, name in enumerate(job.header)}
        standard = [(index[column], target) for column, target in job.mapping.items() if target in CONTACT_TARGETS]
        attributes = [
            (index[column], target.removeprefix(ATTRIBUTE_PREFIX))
            for column, target in job.mapping.items()
            if target.startswith(ATTRIBUTE_PREFIX)
        ]
        (email,) = (i for i, target in standard if target == "email")
        return cls(email, tuple(s for s in standard if s[1] != "email"), tuple(attributes))

    def data(self, record: list[str]) -> dict[str, Any] | None:
        """The row's given values (an empty cell gives nothing: it never blanks a stored
        value), or None for a blank line."""
        n = len(record)
        email = record[self.email].strip() if self.email < n else ""
        if not email and not any(cell.strip() for cell in record):
            return None
        data: dict[str, Any] = {"email": email}
        for i, name in self.standard:
            if i < n:
                value = record[i].strip()
                if value:
                    data[name] = value
        if self.attributes:
            attributes = {}
            for i, key in self.attributes:
                if i < n:
                    value = record[i].strip()
                    if value:
                        attributes[key] = value
            data["attributes"] = attributes
        return data


def _reason(error: ValidationError) -> str:
    return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())


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


def _batches(reader: Iterator[list[str]], line_of: Any, size: int) -> Iterator[list[tuple[int, list[str]]]]:
    """Records with the file line each starts on (a quoted cell may span lines)."""
    batch: list[tuple[int, list[str]]] = []
    line = line_of()
    for record in reader:
        batch.append((line + 1, record))
        line = line_of()
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_run(job_id: int) -> ImportJob | None:
    """Run (or resume) the import; what task `audiences.run_import` calls. Returns the job as
    it ended, or None when there was nothing for this worker to do (another one has it, or
    it is finished)."""
    job = job_claim(ImportJob, job_id)
    if job is None:
        return None
    try:
        with job_heartbeat(ImportJob, job):
            _import_rows(job)
    except _LostClaim:
        logger.warning("import %s was taken over by another worker", job_id)
        return None
    except (OperationalError, InterfaceError):
        # The database went away: nothing more can be recorded now. The job stays running
        # until its heartbeat goes stale; then imports_resume_stalled queues it again and it
        # resumes from its last committed batch.
        raise
    except Exception as error:
        logger.exception("import %s failed", job_id)
        ImportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
            status=JobStatus.FAILED, error_message=_failure_message(error), finished_at=timezone.now()
        )
    return ImportJob.objects.get(pk=job_id)


def _failure_message(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return _("The file is not valid %(encoding)s text.") % {"encoding": error.encoding}
    if isinstance(error, csv.Error):
        return _("The file is not a valid CSV file: %(error)s") % {"error": error}
    if isinstance(error, FileNotFoundError):
        return _("The uploaded file is gone; upload it again.")
    return _("The import stopped on an unexpected error; the rows counted so far were imported.")


@dataclass
class _Parsed:
    """One batch after parse_contact, as the reader hands it to the writer: the valid rows
    staged for the upsert (with the file line and original cells of each, for the report if
    the database rejects it), the rows rejected already, and how many records it covers."""

    records: int
    blank: int
    errors: list[tuple[int, str, str, list[str]]]
    lines: list[int]  # of each valid row, in the order of staged.outcomes
    cells: list[str | list[str]]  # of each valid row, packed by _pack
    staged: StagedRows | None = None


def _pack(record: list[str]) -> str | list[str]:
    """The record's cells as one string when it can be split again: one object instead of
    one per cell to pickle on the way from the reader process, and to unpickle on arrival,
    for cells that are needed only for the few rows the database rejects."""
    joined = "\x00".join(record)
    return joined if joined.count("\x00") == len(record) - 1 else record


def _unpack(packed: str | list[str]) -> list[str]:
    return packed.split("\x00") if isinstance(packed, str) else packed


def _parsed_batches(
    job: ImportJob, plan: _Plan, fields: dict[str, CustomField], size: int, part: int = 0, parts: int = 1
) -> Iterator[_Parsed]:
    """The parsed batches number part, part + parts, part + 2·parts, ... of the file: with
    several readers each reads the whole file (csv is cheap) but judges only its share."""
    with media_path(job.file_path).open(encoding=job.encoding, newline="") as stream:
        reader = csv.reader(stream, delimiter=job.delimiter)
        next(reader, None)  # the header
        # Resuming: skip what is committed (its line numbers still count).
        collections.deque(itertools.islice(reader, job.resume_offset), maxlen=0)
        for index, batch in enumerate(_batches(reader, lambda: reader.line_num, size)):
            if index % parts == part:
                yield _parse_batch(batch, plan, fields)


def _parse_batch(batch: list[tuple[int, list[str]]], plan: _Plan, fields: dict[str, CustomField]) -> _Parsed:
    parsed = _Parsed(len(batch), 0, [], [], [])
    items: list[ContactInput] = []
    for line, record in batch:
        data = plan.data(record)
        if data is None:
            parsed.blank += 1
            continue
        try:
            items.append(parse_contact(data, fields))
        except ValidationError as error:
            parsed.errors.append((line, data["email"], _reason(error), record))
            continue
        parsed.lines.append(line)
        parsed.cells.append(_pack(record))
    if items:
        parsed.staged = contacts_stage(items)
    return parsed


# --- reading ahead: the next batches are parsed while the database writes this one -----------

_T = TypeVar("_T")
READ_AHEAD = 2  # batches waiting for the writer per reader, besides the ones being parsed and written
# Judging rows (parse_contact) costs about as much CPU as PostgreSQL's share of writing them:
# two readers keep the writer fed on a machine with two cores or more.
READERS = 2 if (os.cpu_count() or 1) >= 2 else 1


def _read_ahead(items: Iterator[_T], depth: int = READ_AHEAD) -> Generator[_T, None, None]:
    """`items`, produced by a thread of their own up to `depth` ahead: the fallback where a
    process cannot be forked. Parsing then overlaps with the database's work (psycopg2 releases
    the GIL while it waits), but not with the writer's own Python work."""
    channel: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def send(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                channel.put((kind, value), timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not send("item", item):
                    return
            send("end", None)
        except BaseException as error:  # noqa: BLE001 — handed to the consumer, which raises it
            send("error", error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    # The writer gives up the GIL for each statement and needs it back as soon as the database
    # answers; with the default 5 ms switch interval it waits that long behind the reader at
    # every statement. (A worker process runs one task at a time, so this is ours to tune.)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    thread.start()
    try:
        while True:
            kind, value = channel.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=10)
        sys.setswitchinterval(switch_interval)


def _produce_in_child(channel: Any, parent: int, make: Callable[[], Iterator[Any]]) -> None:
    """The reader process: put what `make()` yields on `channel`, then ("end", None), or the
    error that stopped it. Never touches the database: the connection it inherited is the
    writer's. It stops when the writer is gone (it would otherwise wait on a full channel)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the handlers of a Celery pool process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the writer's to handle
    # Parsing allocates a few dozen objects a row, nearly all freed by reference counting. The
    # cycle collector would traverse the objects of the batches in hand (and everything the
    # fork inherited) hundreds of times a batch (measured: a fifth to a third of the parsing).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

    def send(kind: str, value: Any) -> bool:
        while os.getppid() == parent:
            try:
                channel.put((kind, value), timeout=0.5)
                return True
            except queue.Full:
                continue
        channel.cancel_join_thread()  # nobody will read what is still buffered
        return False

    try:
        for item in make():
            if not send("item", item):
                return
        send("end", None)
    except BaseException as error:  # noqa: BLE001 — handed to the writer, which raises it
        try:
            pickle.dumps(error)
        except Exception:  # noqa: BLE001 — an error that cannot travel is described instead
            error = RuntimeError(f"{type(error).__name__}: {error}")
        send("error", error)


class _ReaderProcess:
    """One forked reader and the channel it fills (see _read_in_processes)."""

    def __init__(self, context: Any, make: Callable[[], Iterator[Any]], depth: int, name: str) -> None:
        self.channel = context.Queue(maxsize=depth)
        self.process = context.Process(
            target=_produce_in_child, args=(self.channel, os.getpid(), make), name=name, daemon=True
        )

    def start(self) -> None:
        self.process.start()
        # Only the reader writes to the pipe. Without the writer's copy of its sending end, a
        # reader that dies in the middle of a batch is an end of file here, not a read that
        # never ends.
        self.channel._writer.close()

    def get(self) -> tuple[str, Any]:
        while True:
            try:
                return tuple(self.channel.get(timeout=1))  # type: ignore[return-value]
            except queue.Empty:
                if self.process.is_alive():
                    continue
                try:  # what it sent before it ended is still in the pipe, then the end of file
                    return tuple(self.channel.get(timeout=1))  # type: ignore[return-value]
                except (queue.Empty, EOFError, OSError):
                    return "died", None
            except (EOFError, OSError):
                return "died", None

    def stop(self, *, finished: bool) -> None:
        if self.process.pid is not None:  # started
            if finished:  # it has sent its end, or is about to
                self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.terminate()
            self.process.join(timeout=10)
        self.channel.close()


def _read_in_processes(makes: list[Callable[[], Iterator[_T]]], depth: int = READ_AHEAD) -> Generator[_T, None, None]:
    """What the `makes()` yield, interleaved (the first item of each, then the second of
    each, ...), each produced in a forked process of its own up to `depth` items ahead. The
    readers then have cores (and GILs) of their own: parsing overlaps with the database's work
    and with the writer's Python work alike. Memory stays bounded by the depth.

    billiard (Celery's multiprocessing) rather than multiprocessing: a Celery prefork pool
    process is a daemon, and multiprocessing refuses to start children from one."""
    context: Any = billiard.get_context("fork")
    readers = [_ReaderProcess(context, make, depth, f"import-reader-{i}") for i, make in enumerate(makes)]
    try:
        for reader in readers:
            reader.start()
    except OSError:  # no process to be had (memory, a process limit): a thread reads instead
        logger.warning("import reader process could not start; reading in a thread", exc_info=True)
        for reader in readers:
            reader.stop(finished=False)
        yield from _read_ahead(_interleave([make() for make in makes]))
        return
    finished = False
    try:
        for reader in itertools.cycle(readers):
            kind, value = reader.get()
            if kind == "died":
                reader.process.join(timeout=10)
                raise RuntimeError(f"The import's reader process ended (exit code {reader.process.exitcode}).")
            if kind == "end":
                # Reader k ends first when the batches ran out at its turn; the ones after it
                # have nothing left either and end on their own.
                finished = True
                return
            if kind == "error":
                raise value
            yield value
    finally:
        for reader in readers:
            reader.stop(finished=finished)


def _interleave(iterators: list[Iterator[_T]]) -> Iterator[_T]:
    """The first item of each iterator, then the second of each, ... until one runs out."""
    for iterator in itertools.cycle(iterators):
        item = next(iterator, _END)
        if item is _END:
            return
        yield item  # type: ignore[misc]


_END = object()


def _can_fork() -> bool:
    return "fork" in billiard.get_all_start_methods()


def _import_rows(job: ImportJob) -> None:
    fields = custom_fields_of(job.workspace)
    plan = _Plan.of(job)
    mailing_list = MailingList.objects.filter(pk=job.mailing_list_id).first() if job.mailing_list_id else None
    report = _ErrorReport(job)
    size = BATCH_ROWS

    def batches(part: int, parts: int) -> Callable[[], Iterator[_Parsed]]:
        return lambda: _parsed_batches(job, plan, fields, size, part, parts)

    if _can_fork():
        parsed_batches = _read_in_processes([batches(part, READERS) for part in range(READERS)])
    else:
        parsed_batches = _read_ahead(batches(0, 1)())
    try:
        for parsed in parsed_batches:
            _write_batch(job, plan, parsed, mailing_list, report)
    finally:
        parsed_batches.close()  # stops the reader now, not when the generator is collected
        report.close()
    ImportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
        status=JobStatus.DONE, total_rows=F("processed_rows"), finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    # Too many contacts changed to name them: every segment of the workspace is refreshed once.
    segments_workspace_changed(workspace_id=job.workspace_id)


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
