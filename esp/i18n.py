"""Translation catalogues without GNU gettext at build time.

    python -m esp.i18n compile   # every locale/*/LC_MESSAGES/*.po -> .mo (polib)
    python -m esp.i18n check     # fail if a catalogue has untranslated or fuzzy entries

`manage.py makemessages -l ru` (needs gettext's xgettext) refreshes the .po files from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polib  # type: ignore[import-untyped]

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


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
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
