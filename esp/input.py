"""Input that PostgreSQL cannot store, and JSON shaped to exhaust the server, refused where it
enters: the REST API's JSON parser (esp.api.parsers), the tracking API's body
(audiences.tracking_views) and every query string and form post (UnstorableInputMiddleware).

PostgreSQL `text` and `jsonb` refuse the NUL character (`\\u0000`), and psycopg cannot encode a
lone UTF-16 surrogate (`\\ud800`, which Python's json accepts): either one reaching a query is a
500, so it is refused up front with the name of the field that carried it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

# NUL, and the lone surrogate code points that only a JSON "\\u" escape or a broken decoder produces.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_FORM_TYPES = ("application/x-www-form-urlencoded",)
# Paths whose callers are programs: they get the API's JSON error shape, not a page.
MACHINE_PREFIXES = ("/api/", "/v1/", "/webhooks/")


def parse_id(value: object) -> int | None:
    """A row id from text (a query string, a form field, JSON), or None. ASCII digits only and
    at most 18 of them: "²".isdigit() is true but int() refuses it, and a longer number would
    not fit the bigint it is compared with."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def unstorable_message(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return _("Text may not contain the NUL character (\\u0000).")
    return _("Invalid text: a lone UTF-16 surrogate (\\u%(code)04x) is not allowed.") % {"code": ord(found.group())}


def json_problems(data: Any, *, max_depth: int) -> dict[str, list[str]]:
    """Field-level errors for parsed JSON: nesting deeper than `max_depth` (arrays and objects)
    and unstorable text in any key or string value. Iterative, so a deep document costs no
    Python stack; stops at the first problem of each kind to stay cheap on large bodies."""
    problems: dict[str, list[str]] = {}
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    too_deep_reported = False
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            message = unstorable_message(value)
            if message:
                problems.setdefault(path or "non_field_errors", []).append(message)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= max_depth:
            if not too_deep_reported:
                problems.setdefault(path or "non_field_errors", []).append(
                    _("JSON nests at most %(max)d levels deep.") % {"max": max_depth}
                )
                too_deep_reported = True
            continue
        items: Iterable[tuple[str, Any]]
        if isinstance(value, dict):
            for key in value:
                message = unstorable_message(key)
                if message:
                    problems.setdefault(f"{path}.{key!a}" if path else ascii(key), []).append(message)
            items = ((str(key), item) for key, item in value.items())
        else:
            items = ((str(index), item) for index, item in enumerate(value))
        for key, item in items:
            stack.append((item, f"{path}.{key}" if path else key, depth + 1))
    return problems


# What a JSON text must contain for its parsed strings to hold NUL or a lone surrogate: the
# escape itself (raw control characters are invalid JSON, and UTF-8 cannot encode surrogates).
# A match (or an escaped backslash before "u0000") only means the full check runs.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def json_may_hold_unstorable(raw: bytes) -> bool:
    return _SUSPECT_ESCAPE.search(raw) is not None


def json_too_deep(data: Any, *, limit: int) -> bool:
    """Whether parsed JSON nests deeper than `limit` arrays and objects; visits containers only,
    without a stack of Python calls."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def query_problems(request: HttpRequest) -> dict[str, list[str]]:
    """Unstorable text in the query string, and in a browser form's fields (urlencoded only:
    reading a multipart body here would consume uploads that views stream themselves)."""
    problems: dict[str, list[str]] = {}
    path_problem = unstorable_message(request.path)
    if path_problem:  # e.g. a webhook token with a NUL: it would reach a database lookup
        problems["path"] = [path_problem]
    sources = [request.GET]
    if (
        request.method == "POST"
        and request.content_type in _FORM_TYPES
        and not request.path.startswith(MACHINE_PREFIXES)
    ):
        sources.append(request.POST)
    for source in sources:
        for key, values in source.lists():
            for text in (key, *values):
                message = unstorable_message(text)
                if message:
                    problems.setdefault(key.replace("\x00", "\\u0000"), []).append(message)
                    break
    return problems


class UnstorableInputMiddleware:
    """Refuses a request whose query string or form carries text PostgreSQL cannot store:
    a 400 in the API's JSON shape on machine paths, a short page elsewhere."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problems = query_problems(request)
        if not problems:
            return self.get_response(request)
        if request.path.startswith(MACHINE_PREFIXES):
            # Imported here: DRF's settings import the API's parser, which imports this module.
            from esp.api.errors import error_body

            message = _("Some fields are not valid.")
            return JsonResponse(error_body(400, "invalid", message, problems), status=400)
        body = render_to_string("400.html", {"problems": problems}, request=request)
        return HttpResponseBadRequest(body)


def max_json_depth() -> int:
    return int(getattr(settings, "API_MAX_JSON_DEPTH", 32))
