"""The REST API's JSON parser: DRF's, with a size cap, a nesting cap and text PostgreSQL can
store, so that every endpoint refuses such bodies with a 400/413 in the API's error shape
instead of failing deep inside (a RecursionError, a NUL byte reaching a query)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

from esp.input import json_may_hold_unstorable, json_problems, json_too_deep, max_json_depth


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        _("The request body is larger than %(limit)s bytes; nothing was stored.") % {"limit": f"{limit:,}"}
    )


def _strict_constant(name: str) -> None:
    raise ValueError(_("%(name)s is not valid JSON.") % {"name": name})


class SafeJSONParser(BaseParser):
    # Not a subclass of DRF's JSONParser: DRF hands those `request.body`, which Django caps at
    # DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) with an HTML 400; this parser reads the stream
    # itself, up to API_MAX_BODY_BYTES.
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = int(settings.API_MAX_BODY_BYTES)
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise too_large(limit)
        try:
            raw = stream.read(limit + 1)
        except RequestDataTooBig:
            raise too_large(limit) from None
        if len(raw) > limit:
            raise too_large(limit)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        max_depth = max_json_depth()
        too_deep = exceptions.ParseError(_("JSON nests at most %(max)d levels deep.") % {"max": max_depth})
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_strict_constant)
        except RecursionError:  # the C parser's guard against a 100,000-deep array
            raise too_deep from None
        except (ValueError, UnicodeDecodeError) as error:
            raise exceptions.ParseError(_("The body is not valid JSON: %(error)s") % {"error": error}) from None
        if isinstance(data, dict | list) and json_too_deep(data, limit=max_depth):
            raise too_deep
        # Only a body that spells an escape can hold NUL or a lone surrogate: the walk that
        # names the field runs for those alone.
        if json_may_hold_unstorable(raw):
            problems = json_problems(data, max_depth=max_depth)
            if problems:
                raise exceptions.ValidationError(problems)
        return data
