"""The budgets of a render: a deadline checked on every loop iteration, and a cap on the characters
produced by variables, filters and loop iterations (a contextvar: no signals or threads)."""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.content.errors import TemplateProblem

MAX_SOURCE_CHARS = 300_000
MAX_OUTPUT_CHARS = 1_000_000
# Variables, filters and loop bodies together may produce this much (intermediate results
# count too: a loop's body is counted once inside the loop and once more as the loop's output).
MAX_PRODUCED_CHARS = 4 * MAX_OUTPUT_CHARS
MAX_RENDER_SECONDS = 1.0
MAX_WIDTH = 1_000  # ljust / rjust / center / stringformat widths
MAX_DECIMALS = 20  # floatformat
_UNKNOWN = object()


class _Budget:
    __slots__ = ("deadline", "language", "produced", "zone")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.produced = 0
        # The active language and time zone, looked up once per email (for the filters in filters.py;
        # nothing in a sandboxed template can change either: {% language %} is refused and the
        # tz library is not loaded).
        self.language: Any = _UNKNOWN
        self.zone: Any = _UNKNOWN

    def spend(self, chars: int) -> None:
        self.produced += chars
        if self.produced > MAX_PRODUCED_CHARS:
            raise TemplateProblem(
                ngettext(
                    "The email grows beyond %(limit)s character: is a loop repeating too much?",
                    "The email grows beyond %(limit)s characters: is a loop repeating too much?",
                    MAX_OUTPUT_CHARS,
                )
                % {"limit": number_format(MAX_OUTPUT_CHARS, force_grouping=True)}
            )

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateProblem(
                _("Rendering took longer than %(seconds)s s: is a loop repeating too much?")
                % {"seconds": MAX_RENDER_SECONDS}
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("esp_template_budget", default=None)


def _spend(chars: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(chars)


class render_budget:
    """One budget (deadline and size) shared by several renders, e.g. the parts of one email."""

    def __init__(self, seconds: float = MAX_RENDER_SECONDS) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        self._token = _BUDGET.set(_Budget(self.seconds))

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self._token)
