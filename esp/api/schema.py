"""The OpenAPI document and the code kept in agreement.

`document_errors` (a drf-spectacular postprocessing hook) documents the one error shape
(esp/api/errors.py) for the answers every operation can give: 400, 401, 403, 404, 429, and 413
where a body is sent. `refuse_unknown_query_parameters` turns the document around: a query
parameter an operation does not document is a 400 naming it, not silently ignored (a typo in
`?serach=` would otherwise return every row)."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _
from rest_framework import exceptions

if TYPE_CHECKING:
    from rest_framework.request import Request

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Each invalid field (nested paths joined by dots) and its messages.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
_COMMON_ERRORS = {
    "400": "Invalid input: `fields` names each invalid field or query parameter.",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The API key lacks the scope this operation needs.",
    "404": "No such object in this workspace.",
    "429": "Too many requests for this API key; see Retry-After.",
}
_BODY_ERRORS = {"413": "The request body is larger than API_MAX_BODY_BYTES."}
_METHODS = {"get", "post", "put", "patch", "delete"}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            errors = dict(_COMMON_ERRORS)
            if "requestBody" in operation:
                errors.update(_BODY_ERRORS)
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                response = responses.setdefault(status, {"description": description})
                response.setdefault("content", content)
    return result


_PATH_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@functools.cache
def documented_query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    documented: dict[tuple[str, str], frozenset[str]] = {}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method in _METHODS:
                names = {
                    parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "query"
                }
                documented[(path, method)] = frozenset(names)
    return documented


def refuse_unknown_query_parameters(request: Request) -> None:
    match = request.resolver_match
    if match is None:
        return
    path = "/" + _PATH_CONVERTER.sub(r"{\1}", match.route)
    allowed = documented_query_parameters().get((path, (request.method or "").lower()))
    if allowed is None:  # not in the document (the API root, OPTIONS): nothing to compare
        return
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or _("none")
        message = _("Unknown query parameter; this operation takes: %(names)s.") % {"names": expected}
        raise exceptions.ValidationError({name: [message] for name in unknown})
