"""Reading an uploaded CSV's format: its encoding, its delimiter, its header, and a first
estimate of its row count."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

SAMPLE_BYTES = 64 * 1024
READ_CHUNK = 1024 * 1024
MAX_COLUMNS = 500
DELIMITERS = ",;\t|"


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
