"""Counted words: plural forms for scripts (the browser gets a word's form for every count it
may show), and the count messages several parts of the project share."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import ngettext

# A script shows forms[n] for n below this, and forms[100 + n % 100] above: gettext's plural
# rules (English, Russian, and most others) look at n == 1, n % 10 and n % 100 only.
COUNTS = 200


def plural_forms(word: Callable[[int], str]) -> list[str]:
    """`word(n)` for n = 0 … COUNTS - 1, in the active language. `word` is a lambda around an
    ngettext call (`lambda n: ngettext("day", "days", n)`), so makemessages finds the strings."""
    return [word(n) for n in range(COUNTS)]


def at_most_characters(n: int) -> str:
    """The error for a text over its length limit (contact fields, event names, segment values)."""
    return ngettext("At most %(n)d character.", "At most %(n)d characters.", n) % {"n": n}
