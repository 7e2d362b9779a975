"""Plain data only: the context frozen into read-only copies before rendering, and values
computed only if the template asks for them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from datetime import time as dt_time
from decimal import Decimal
from types import MappingProxyType
from typing import Any

_SCALARS = (str, int, float, bool, Decimal, date, datetime, dt_time, type(None))


class Lazy:
    """A value computed only if the template asks for it (e.g. recommended products: a query
    that most templates never need). Django calls it on lookup; the result is frozen."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute
        self._done = False
        self._value: Any = None

    def __call__(self) -> Any:
        if not self._done:
            self._value = freeze(self._compute())
            self._done = True
        return self._value


# The exact types most values have, tested before the isinstance() chain (this runs over
# every recipient's context).
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """A read-only copy of plain data: dict → mappingproxy, list/tuple → tuple. Anything that
    is not plain data (a model, a queryset, a request, a function) is refused."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is dict:
        return MappingProxyType(
            {
                (k if type(k) is str else str(k)): (v if type(v) in _PLAIN_SCALARS else freeze(v))
                for k, v in value.items()
            }
        )
    if kind is list or kind is tuple:  # (a list comprehension is quicker than tuple(generator))
        return tuple([v if type(v) in _PLAIN_SCALARS else freeze(v) for v in value])
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Lazy):
        return value
    raise TypeError(f"Email templates only see plain data, not {type(value).__name__}")
