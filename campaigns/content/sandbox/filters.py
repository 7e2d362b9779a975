"""The filters: Django's defaults, each guarded (arguments that would build a huge string
refused before it runs, output counted, lists frozen), and the results of the costly ones
remembered between renders."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dt_time
from decimal import Decimal
from functools import wraps
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.safestring import SafeString
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from campaigns.content.errors import TemplateProblem
from campaigns.content.sandbox import mode
from campaigns.content.sandbox.budget import _BUDGET, _UNKNOWN, MAX_DECIMALS, MAX_OUTPUT_CHARS, MAX_WIDTH, _spend
from campaigns.content.sandbox.data import freeze


def _int_arg(arg: Any) -> int | None:
    try:
        return int(str(arg).strip())
    except (TypeError, ValueError):
        return None


def _too_wide(name: str, width: int) -> TemplateProblem:
    return TemplateProblem(
        _("|%(filter)s: %(width)s is above the limit of %(limit)d.")
        % {"filter": name, "width": width, "limit": MAX_WIDTH}
    )


_FORMAT_NUMBERS = re.compile(r"\d+")


# The filters _check_args has something to say about.
_CHECKED_FILTERS = frozenset({"ljust", "rjust", "center", "stringformat", "floatformat", "join", "add"})


def _check_args(name: str, value: Any, args: tuple[Any, ...]) -> None:
    """Refuse arguments that would make a filter build a huge string, before it runs."""
    arg: Any = args[0] if args else None
    if name in ("ljust", "rjust", "center"):
        width = _int_arg(arg)
        if width is not None and width > MAX_WIDTH:
            raise _too_wide(name, width)
    elif name == "stringformat":
        for number in _FORMAT_NUMBERS.findall(str(arg)):
            if int(number) > MAX_WIDTH:
                raise _too_wide(name, int(number))
    elif name == "floatformat":
        if type(arg) is int:  # `floatformat:2` (what the line below makes of it, parsed once)
            digits: int | None = arg
        else:
            digits = _int_arg(str(arg).rstrip("gud")) if arg is not None else None
        if digits is not None and abs(digits) > MAX_DECIMALS:
            raise TemplateProblem(
                ngettext(
                    "|floatformat: at most %(limit)d decimal place.",
                    "|floatformat: at most %(limit)d decimal places.",
                    MAX_DECIMALS,
                )
                % {"limit": MAX_DECIMALS}
            )
    elif name == "join":
        try:
            size = len(value) * len(str(arg))
        except TypeError:
            size = 0
        if size > MAX_OUTPUT_CHARS:
            raise TemplateProblem(_("|join would build a text beyond the size limit."))
    elif name == "add":
        try:
            size = len(value) + len(arg)
        except TypeError:
            size = 0
        if size > MAX_OUTPUT_CHARS:
            raise TemplateProblem(_("|add would build a text beyond the size limit."))


# Filters whose result depends only on the value, the arguments, the autoescape flag and the
# active language (numbers and dates formatted for the locale; settings and the default time
# zone are fixed for the process; `date` and `time` get values already converted to the current
# time zone, which the value's repr carries). Each costs 4-25 µs, and the same values come back
# in the text part and in the next recipients' emails (a campaign's prices and dates, the
# workspace's postal address): their results are kept.
_REMEMBERED_FILTERS = frozenset({"floatformat", "date", "time", "linebreaksbr", "linebreaks"})
_REMEMBERED_SIZE = 4096
_remembered: dict[tuple[Any, ...], str] = {}
_EXACT_TYPES = frozenset({str, SafeString, int, bool, type(None)})
# Equal values that may format differently (0.0 and -0.0, Decimal 1.0 and 1.00, a datetime
# and the same instant in another zone or fold): these are told apart by their repr.
_REPR_TYPES = frozenset({float, Decimal, date, datetime, dt_time})
_NOT_KEPT = object()


@receiver(setting_changed)
def _forget_remembered(**kwargs: Any) -> None:
    # Formats and the default time zone are settings (override_settings in tests).
    _remembered.clear()


def _remembered_key(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    kind = type(value)
    if kind in _EXACT_TYPES:
        shown = value
    elif kind in _REPR_TYPES:
        shown = repr(value)
    else:
        return None
    for arg in args:
        if type(arg) not in _EXACT_TYPES:
            return None
    options: tuple[Any, ...] = ()
    if kwargs:
        # autoescape=True/False, given to the filters that need it.
        if any(type(option) not in _EXACT_TYPES for option in kwargs.values()):
            return None
        options = tuple(kwargs.items())
    budget = _BUDGET.get()
    if budget is None:
        language = get_language()
    else:
        language = budget.language
        if language is _UNKNOWN:
            language = budget.language = get_language()
    return (name, kind, shown, tuple(map(type, args)), args, options, language)


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    remembered = name in _REMEMBERED_FILTERS
    checked = name in _CHECKED_FILTERS

    @wraps(func)  # keeps is_safe/needs_autoescape/… and the signature Django checks
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        if checked:
            _check_args(name, value, args)
        key = _remembered_key(name, value, args, kwargs) if remembered and not mode.plain else None
        if key is None:
            result = func(value, *args, **kwargs)
        else:
            result = _remembered.get(key, _NOT_KEPT)
            if result is _NOT_KEPT:
                result = func(value, *args, **kwargs)
                if type(result) is str or type(result) is SafeString:
                    if len(_remembered) >= _REMEMBERED_SIZE:
                        _remembered.clear()
                    _remembered[key] = result
        if isinstance(result, str):
            _spend(len(result))
        elif isinstance(result, list | tuple):
            result = freeze(result)
        return result

    return guarded
