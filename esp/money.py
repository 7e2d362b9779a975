"""Money as a person reads it: the workspace's currency, formatted by the reader's language.

Two interface languages do not justify a CLDR library: Django's own number formats give the
separators ("1,234.50" / "1 234,50"), and each language writes the symbol on its side."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import formats, translation
from django.utils.translation import gettext_lazy as _

# ISO 4217 codes a shop here is likely to price in; the label is for the settings form.
CURRENCIES = [
    ("EUR", _("Euro (€)")),
    ("USD", _("US dollar ($)")),
    ("GBP", _("Pound sterling (£)")),
    ("BGN", _("Bulgarian lev (лв.)")),
    ("RUB", _("Russian rouble (₽)")),
    ("UAH", _("Ukrainian hryvnia (₴)")),
    ("KZT", _("Kazakh tenge (₸)")),
    ("PLN", _("Polish złoty (zł)")),
    ("CZK", _("Czech koruna (Kč)")),
    ("RON", _("Romanian leu (lei)")),
    ("CHF", _("Swiss franc (CHF)")),
    ("SEK", _("Swedish krona (kr)")),
    ("TRY", _("Turkish lira (₺)")),
]
SYMBOLS = {
    "EUR": "€", "USD": "$", "GBP": "£", "BGN": "лв.", "RUB": "₽", "UAH": "₴", "KZT": "₸", "PLN": "zł",
    "CZK": "Kč", "RON": "lei", "CHF": "CHF", "SEK": "kr", "TRY": "₺",
}  # fmt: skip
# Where the symbol goes, by language (English: "€1,234.50"; Russian: "1 234,50 €").
SYMBOL_FIRST = {"en": True, "ru": False}
NBSP = "\u00a0"


def format_money(amount: Any, currency: str, language: str | None = None) -> str:
    """`amount` (a Decimal, float, int or numeric string) with two decimals, grouped, and the
    currency's symbol where the language writes it; empty for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    language = (language or translation.get_language() or "en")[:2]
    with translation.override(language):
        number = formats.number_format(abs(value), decimal_pos=2, use_l10n=True, force_grouping=True)
    number = number.replace(" ", NBSP)
    symbol = SYMBOLS.get(currency, currency)
    sign = "-" if value < 0 else ""
    if SYMBOL_FIRST.get(language, True):
        # A letter symbol ("CHF", "kr") needs a space before the digits; "€", "$" do not.
        gap = NBSP if symbol[-1:].isalpha() else ""
        return f"{sign}{symbol}{gap}{number}"
    return f"{sign}{number}{NBSP}{symbol}"
