from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

from esp.selectors import membership_of_user

SESSION_WORKSPACE_KEY = "workspace_id"
request_logger = logging.getLogger("esp.request")


class RequestLogMiddleware:
    """One structured log line per request, with an id echoed in the X-Request-ID header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        started = time.monotonic()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        workspace = getattr(request, "workspace", None)
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        request_logger.info(
            # Readable as text (make run); the same values are JSON fields in production logs.
            "%s %s %s %sms",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "workspace_id": workspace.pk if workspace else None,
            },
        )
        return response


class UserLanguageMiddleware:
    """A logged-in user's chosen language wins over the browser's Accept-Language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


class CurrentWorkspaceMiddleware:
    """Sets request.workspace and request.membership from the workspace chosen in the session
    (the switcher), falling back to the user's first workspace. Only memberships are
    considered, so a session can never point at a workspace the user does not belong to."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.workspace = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            membership = membership_of_user(user=user, workspace_id=request.session.get(SESSION_WORKSPACE_KEY))
            if membership is not None:
                request.membership = membership  # type: ignore[attr-defined]
                request.workspace = membership.workspace  # type: ignore[attr-defined]
        return self.get_response(request)
