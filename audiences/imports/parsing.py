"""The file read in batches and each batch judged by parse_contact (what a reader does): the
valid rows staged for the upsert, the rejected ones with their reason."""

from __future__ import annotations

import collections
import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from audiences.contacts import ContactInput, StagedRows, contacts_stage, parse_contact
from audiences.imports.mapping import _Plan
from audiences.jobs.machinery import media_path
from audiences.models import CustomField, ImportJob


def _reason(error: ValidationError) -> str:
    return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())


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
