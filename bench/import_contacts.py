"""Benchmark of the CSV contact import, through the real path.

Generates a realistic CSV (the shop's customer id, email, names with some Cyrillic ones, city, country, two custom
fields, a few per cent of bad rows and some repeated addresses) in a temporary directory,
imports it into a scratch workspace with import_create + import_run (what the Celery task
runs), and in the same run loads the same file with psql's \\copy into a scratch table, as
the speed of light for getting those bytes into PostgreSQL. Prints rows/s for both, the ratio
and the peak memory of this process. The scratch workspace, table and files are removed.

    .venv/bin/python -m esp.embedded exec -- .venv/bin/python bench/import_contacts.py --rows 1000000

Targets: >= 20,000 rows/s, >= 40 % of \\copy, peak memory flat in the file's size (compare
--rows 200000). Results are in bench/README.md. Besides rows/s it prints where the CPU went:
the writer (this process: COPY, statements, outcomes, report), the reader process that
import_run forks to parse the next batches, and this connection's PostgreSQL backend.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from unittest import mock

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files import File  # noqa: E402
from django.db import connection  # noqa: E402

from audiences import tasks  # noqa: E402
from audiences.imports import (  # noqa: E402
    import_create,
    import_preview,
    import_run,
    import_start,
    readers,
)
from audiences.imports import run as import_job  # noqa: E402
from audiences.models import (  # noqa: E402
    Contact,
    CustomField,
    FieldType,
    ImportJob,
)
from esp.models import Workspace  # noqa: E402

FIRST = ["Anna", "Maria", "John", "Peter", "Elena", "Lucas", "Sofia", "Mehmet", "Olga", "Chen"]
FIRST_CYR = ["Иван", "Мария", "Пётр", "Елена", "Георги", "Наталья", "Димитър", "Светлана"]
LAST = ["Smith", "Müller", "Novak", "Ivanova", "Garcia", "Rossi", "Kowalski", "Dubois", "Petrov", "Lee"]
LAST_CYR = ["Иванов", "Петрова", "Смирнов", "Георгиев", "Кузнецова", "Димитров"]
CITIES = [
    ("Sofia", "BG"), ("Plovdiv", "BG"), ("София", "BG"), ("Москва", "RU"), ("Санкт-Петербург", "RU"),
    ("Berlin", "DE"), ("London", "GB"), ("Paris", "FR"), ("Madrid", "ES"), ("Warsaw", "PL"), ("New York", "US"),
    ("", ""),
]  # fmt: skip
DOMAINS = ["example.com", "mail.example", "shop.example.org", "пример.бг"]
PLANS = ["free", "basic", "pro"]


def generate(path: Path, rows: int, bad_percent: float, seed: int = 42) -> dict[str, int]:
    """Write the CSV row by row (memory flat); return how many rows of each kind it has."""
    rng = random.Random(seed)
    kinds = {"good": 0, "bad": 0, "repeat": 0}
    recent: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Customer ID", "Email", "First name", "Last name", "City", "Country", "orders", "plan"])
        for i in range(rows):
            cyrillic = rng.random() < 0.2
            first = rng.choice(FIRST_CYR if cyrillic else FIRST)
            last = rng.choice(LAST_CYR if cyrillic else LAST)
            city, country = rng.choice(CITIES)
            email = f"user{i}.{rng.randrange(10**6)}@{rng.choice(DOMAINS)}"
            orders, plan = str(rng.randrange(60)), rng.choice(PLANS)
            roll = rng.random() * 100
            if roll < bad_percent:
                kinds["bad"] += 1
                fault = rng.randrange(4)
                if fault == 0:
                    email = email.replace("@", " at ")
                elif fault == 1:
                    orders = "lots"
                elif fault == 2:
                    country = "Bulgaria"
                else:
                    plan = "gold"
            elif roll < bad_percent + 0.5 and recent:
                kinds["repeat"] += 1
                email = rng.choice(recent)
            else:
                kinds["good"] += 1
            if i % 97 == 0:
                recent = [*recent[-50:], email]
            writer.writerow([f"C{i:07d}", email, first, last, city, country, orders, plan])
    return kinds


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process, or (RUSAGE_CHILDREN) of its largest finished child."""
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process (the writer) and of its finished children (the reader)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def backend_cpu_seconds() -> float | None:
    """CPU time of this connection's PostgreSQL backend, when it runs on this machine."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def psql_binary() -> str:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        candidate = POSTGRES_BIN_PATH / "psql"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("psql") or "/usr/bin/psql"


def copy_baseline(path: Path, workspace: Workspace) -> tuple[float, int, float, int]:
    """psql's \\copy of the file into a fresh scratch table (seconds, rows), then one set-based
    INSERT ... SELECT of those rows into audiences_contact of `workspace`, unvalidated (seconds,
    rows): the speed of light for the bytes, and for the same end state without Python."""
    db = settings.DATABASES["default"]
    table = f"bench_copy_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
    args = [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", str(db["NAME"])]
    for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER")):
        if db.get(key):
            args += [flag, str(db[key])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (customer_id text, email text, first_name text, last_name text, city text, "
            "country text, orders text, plan text)"
        )
    try:
        started = time.perf_counter()
        subprocess.run(
            [*args, "-c", f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true)"], env=env, check=True
        )
        copy_seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            (copied,) = cursor.fetchone()
            started = time.perf_counter()
            cursor.execute(
                f"""
                INSERT INTO audiences_contact (
                    workspace_id, email, external_id, first_name, last_name, gender, phone, city, country,
                    time_zone, locale, attributes, tags, source, created_at, updated_at
                )
                SELECT %s, left(email, 254), coalesce(customer_id, ''), coalesce(first_name, ''),
                       coalesce(last_name, ''), '', '', coalesce(city, ''), left(coalesce(country, ''), 2), '', '',
                       jsonb_build_object('orders', orders, 'plan', plan), '{{}}', 'import', now(), now()
                FROM {table}
                ON CONFLICT (workspace_id, lower(email)) DO NOTHING
                """,
                [workspace.pk],
            )
            inserted = cursor.rowcount
            insert_seconds = time.perf_counter() - started
        return copy_seconds, copied, insert_seconds, inserted
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def cleanup(workspace: Workspace) -> None:
    # Set-based: the scratch workspace has contacts only (no lists, no messages), so the rows
    # go with plain DELETEs instead of Django's collector walking a million contacts.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audiences_contact WHERE workspace_id = %s", [workspace.pk])
    ImportJob.objects.filter(workspace=workspace).delete()
    CustomField.objects.filter(workspace=workspace).delete()
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "imports" / str(workspace.pk), ignore_errors=True)
    workspace.delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad-percent", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=import_job.BATCH_ROWS, help="rows per batch")
    parser.add_argument("--no-copy", action="store_true", help="skip the \\copy baseline")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of import_run (the writer) to FILE")
    parser.add_argument(
        "--reader",
        choices=["process", "thread"],
        default="process",
        help="where the batches are parsed: a forked process (what the worker does) or the fallback thread",
    )
    options = parser.parse_args()
    import_job.BATCH_ROWS = options.batch
    if options.reader == "thread":
        readers._can_fork = lambda: False  # type: ignore[assignment]
    # The bench calls import_run itself; the task must not also go to a worker on the broker.
    tasks.run_import.delay_on_commit = lambda *args, **kwargs: None  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory(prefix="esp-bench-") as tmp:
        path = Path(tmp) / "contacts.csv"
        started = time.perf_counter()
        kinds = generate(path, options.rows, options.bad_percent)
        size_mb = path.stat().st_size / 1024**2
        print(f"generated {options.rows:,} rows ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f}s: {kinds}")

        # Dead rows of an earlier run would be vacuumed in the middle of this one's measurement.
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM audiences_contact")
        print(f"VACUUM audiences_contact before measuring: {time.perf_counter() - started:.1f}s")
        workspace = Workspace.objects.create(name="bench", slug=f"bench-{uuid.uuid4().hex[:12]}")
        scratch = [workspace]
        try:
            CustomField.objects.create(workspace=workspace, key="orders", label="Orders", type=FieldType.NUMBER)
            CustomField.objects.create(
                workspace=workspace, key="plan", label="Plan", type=FieldType.CHOICE, choices=PLANS
            )
            rss_before = maxrss_mb()
            started = time.perf_counter()
            with path.open("rb") as stream:
                job = import_create(workspace=workspace, user=None, uploaded_file=File(stream, name="contacts.csv"))
            upload_seconds = time.perf_counter() - started
            mapping = import_preview(job).mapping
            print(f"upload + detection: {upload_seconds:.2f}s ({job.encoding}, {job.delimiter!r}), mapping {mapping}")
            # The bench times import_run in this process, so the task import_start enqueues must
            # not reach a worker (a running `make run` shares the embedded broker).
            with mock.patch.object(tasks.run_import, "apply_async"):
                import_start(workspace=workspace, job_id=job.pk, mapping=mapping)

            profiler = cProfile.Profile() if options.profile else None
            cpu_before, backend_before = cpu_seconds(), backend_cpu_seconds()
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            done = import_run(job.pk)
            if profiler:
                profiler.disable()
            import_seconds = time.perf_counter() - started
            cpu_after, backend_after = cpu_seconds(), backend_cpu_seconds()
            reader_rss = maxrss_mb(resource.RUSAGE_CHILDREN)  # before psql runs as a child too
            if profiler:
                profiler.dump_stats(options.profile)
                pstats.Stats(options.profile).sort_stats("cumulative").print_stats(25)
            assert done is not None and done.status == "done", done and done.error_message
            contacts = Contact.objects.filter(workspace=workspace).count()
            rate = done.processed_rows / import_seconds
            print(
                f"import_run: {done.processed_rows:,} rows in {import_seconds:.1f}s = {rate:,.0f} rows/s "
                f"(batches of {import_job.BATCH_ROWS:,}); created {done.created_count:,}, updated "
                f"{done.updated_count:,}, rejected {done.rejected_count:,}; {contacts:,} contacts stored"
            )
            reader_memory = (
                f"; largest reader process: {reader_rss:.0f} MB (a fork: pages shared with this one count in both)"
                if options.reader == "process"
                else ""
            )
            print(
                f"peak memory (ru_maxrss): {maxrss_mb():.0f} MB (before the import: {rss_before:.0f} MB){reader_memory}"
            )
            per_row = 1e6 / max(done.processed_rows, 1)
            writer_cpu, reader_cpu = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
            backend = (
                ""
                if backend_after is None or backend_before is None
                else (
                    f", PostgreSQL backend {backend_after - backend_before:.1f}s "
                    f"({(backend_after - backend_before) * per_row:.0f} µs/row)"
                )
            )
            if options.reader == "process":
                split = (
                    f"writer {writer_cpu:.1f}s ({writer_cpu * per_row:.0f} µs/row), "
                    f"{readers.READERS} reader processes together {reader_cpu:.1f}s ({reader_cpu * per_row:.0f} µs/row)"
                )
            else:
                split = f"writer and reader thread {writer_cpu:.1f}s ({writer_cpu * per_row:.0f} µs/row)"
            print(f"CPU during import_run: {split}{backend}")
            if not options.no_copy:
                baseline = Workspace.objects.create(name="bench copy", slug=f"bench-copy-{uuid.uuid4().hex[:12]}")
                scratch.append(baseline)
                copy_seconds, copied, insert_seconds, inserted = copy_baseline(path, baseline)
                copy_rate = copied / copy_seconds
                sql_rate = copied / (copy_seconds + insert_seconds)
                print(
                    f"psql \\copy into a scratch table: {copied:,} rows in {copy_seconds:.1f}s = "
                    f"{copy_rate:,.0f} rows/s"
                )
                print(
                    f"  + INSERT ... SELECT into audiences_contact (no validation): {inserted:,} rows in "
                    f"{insert_seconds:.1f}s; together {sql_rate:,.0f} rows/s"
                )
                print(
                    f"import / \\copy: {rate / copy_rate:.1%}; "
                    f"import / (\\copy + INSERT ... SELECT): {rate / sql_rate:.0%}"
                )
        finally:
            for each in scratch:
                cleanup(each)
    return 0


if __name__ == "__main__":
    sys.exit(main())
