"""Every API error is JSON of one shape:

    {"error": {"status": 400, "code": "invalid", "message": "...", "fields": {"email": ["..."]}}}

`fields` is present for validation errors and names each bad field (nested paths joined by dots,
list items by index), so a client can show the message next to the right input.

Services raise Django's ValidationError; `json_exception_handler` answers it like DRF's own, so
API views call services without catching. `error_fields` is the one reading of such an error,
also for code that reports it in another shape (a bulk item's errors).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten(value, path))
        return fields
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        fields = {}
        for index, item in enumerate(detail):
            fields.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return fields
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(item) for item in items]}


def error_fields(error: DjangoValidationError) -> dict[str, list[str]]:
    """Field name -> messages of a Django ValidationError; one without fields is about the
    request as a whole ("non_field_errors", as DRF names it). Keys such as
    "attributes.income_band" are kept as they are."""
    if hasattr(error, "error_dict"):
        return {key: [str(message) for message in messages] for key, messages in error.message_dict.items()}
    return {"non_field_errors": [str(message) for message in error.messages]}


def error_body(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(error_fields(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        body = error_body(response.status_code, "invalid", _("Some fields are not valid."), fields)
    else:
        codes = exc.get_codes()
        body = error_body(response.status_code, codes if isinstance(codes, str) else "error", str(exc.detail))
    response.data = body
    return response


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(404, "not_found", _("No such endpoint.")), status=404)


def api_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body(413, "too_large", _("The request body is too large.")), status=413)
    return JsonResponse(error_body(400, "bad_request", _("The request could not be understood.")), status=400)


def api_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body(500, "server_error", _("Internal error; it has been logged.")), status=500)
