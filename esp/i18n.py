"""Translation catalogues without GNU gettext at build time.

    python -m esp.i18n compile   # every locale/*/LC_MESSAGES/*.po -> .mo (polib)
    python -m esp.i18n check     # fail if a catalogue has untranslated or fuzzy entries
    python -m esp.i18n stale     # fail if the code has msgids a catalogue lacks (needs xgettext)

Refresh the .po files from the code with (needs gettext's xgettext, msgmerge):

    python manage.py makemessages -l ru -l en --no-obsolete --ignore=.venv --ignore=node_modules \\
        --ignore=staticfiles --ignore=static/vendor --ignore=tests --ignore=bench
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import polib  # type: ignore[import-untyped]

BASE_DIR = Path(__file__).resolve().parent.parent
LOCALE_DIR = BASE_DIR / "locale"
# The --ignore patterns of the makemessages command above.
IGNORE_PATTERNS = [".venv", "node_modules", "staticfiles", "static/vendor", "tests", "bench"]
# Settings only have to load for `stale`: nothing connects to these (as the Makefile's OFFLINE_ENV).
OFFLINE_ENV = {
    "DATABASE_URL": "postgres://unused/unused",
    "CELERY_BROKER_URL": "redis://unused",
    "SECRET_KEY": "offline-only",
}
STALE_LIMIT = 10
GETTEXT_TOOLS = ["xgettext", "msguniq", "msgmerge", "msgattrib"]

MsgKey = tuple[str, str, str]  # (msgctxt, msgid, msgid_plural)


def catalogues() -> list[Path]:
    return sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))


def compile_all() -> None:
    for po_path in catalogues():
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.exists() or mo_path.stat().st_mtime < po_path.stat().st_mtime:
            polib.pofile(str(po_path)).save_as_mofile(str(mo_path))


def incomplete_entries(po_path: Path) -> list[str]:
    catalogue = polib.pofile(str(po_path))
    return [entry.msgid for entry in catalogue.untranslated_entries() + catalogue.fuzzy_entries()]


def gettext_tools_missing() -> list[str]:
    """The GNU gettext programs makemessages runs that are not on PATH."""
    return [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]


def _keys(po_path: Path) -> list[MsgKey]:
    return [
        (entry.msgctxt or "", entry.msgid, entry.msgid_plural or "")
        for entry in polib.pofile(str(po_path))
        if entry.msgid and not entry.obsolete
    ]


def stale_entries() -> dict[str, list[str]]:
    """Catalogue (relative path) -> msgids the code has and that catalogue lacks.

    Runs Django's makemessages, with the project's --ignore patterns, for every language of
    settings.LANGUAGES and of locale/, on a temporary copy of locale/: the committed catalogues
    are not touched. makemessages writes into the `locale` directory next to the files it
    scans, so it runs in a temporary directory that holds that copy and symlinks to the
    project's top-level entries (var/, the runtime data, left out). Needs Django set up."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings

    if missing_tools := gettext_tools_missing():
        raise RuntimeError(f"GNU gettext's {', '.join(missing_tools)} not on PATH; makemessages needs them.")
    languages = sorted({code for code, _name in settings.LANGUAGES} | {p.parent.parent.name for p in catalogues()})
    skip = {"locale", "var", *(pattern for pattern in IGNORE_PATTERNS if "/" not in pattern)}
    with tempfile.TemporaryDirectory(prefix="esp-i18n-") as tmp:
        root = Path(tmp)
        shutil.copytree(LOCALE_DIR, root / "locale", ignore=shutil.ignore_patterns("*.mo", "*.pot"))
        for entry in BASE_DIR.iterdir():
            if not entry.name.startswith(".") and entry.name not in skip:
                (root / entry.name).symlink_to(entry)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            # No LOCALE_PATHS: only the copy (found as ./locale) is written to.
            with override_settings(LOCALE_PATHS=[]):
                call_command(
                    "makemessages",
                    locale=languages,
                    ignore_patterns=IGNORE_PATTERNS,
                    symlinks=True,
                    no_obsolete=True,
                    verbosity=0,
                )
        finally:
            os.chdir(cwd)
        stale: dict[str, list[str]] = {}
        for fresh_path in sorted((root / "locale").glob("*/LC_MESSAGES/*.po")):
            relative = fresh_path.relative_to(root)
            committed = BASE_DIR / relative
            known = set(_keys(committed)) if committed.exists() else set()
            missing = [key[1] for key in _keys(fresh_path) if key not in known]
            if missing:
                stale[str(relative)] = missing
    return stale


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "esp.settings.base")
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    django.setup()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "compile"
    if command == "compile":
        compile_all()
        return 0
    if command == "check":
        problems = {str(path): incomplete_entries(path) for path in catalogues()}
        problems = {path: ids for path, ids in problems.items() if ids}
        for path, ids in problems.items():
            print(f"{path}: {len(ids)} untranslated or fuzzy: {ids[:5]}")
        return 1 if problems else 0
    if command == "stale":
        _setup_django()
        stale = stale_entries()
        for path, ids in stale.items():
            print(f"{path} lacks {len(ids)} msgid(s) found in the code:")
            for msgid in ids[:STALE_LIMIT]:
                print(f"    {msgid!r}")
            if len(ids) > STALE_LIMIT:
                print(f"    ... and {len(ids) - STALE_LIMIT} more")
        if stale:
            print("Run makemessages (see `python -m esp.i18n help`), translate the new entries, then compile.")
        return 1 if stale else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
