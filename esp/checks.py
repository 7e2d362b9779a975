"""Start-up checks of the deployment: a public base URL that mail may carry.

RFC 8058 one-click unsubscribe wants an https URI in List-Unsubscribe, and the tracking,
unsubscribe and preference links carry tokens that plain http shows to every network on the
way. Outside the embedded launcher (a local run on one machine) a non-https PUBLIC_BASE_URL
stops the processes unless the operator says plain http is meant (ALLOW_HTTP_PUBLIC_URL, e.g.
a local docker-compose trial)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


def public_url_is_https() -> bool:
    return urlsplit(str(settings.PUBLIC_BASE_URL)).scheme.lower() == "https"


def public_url_problem() -> str | None:
    """Why this process must not start with its PUBLIC_BASE_URL, or None."""
    if public_url_is_https() or settings.ALLOW_HTTP_PUBLIC_URL or settings.LOCAL_RUN:
        return None
    return (
        f"PUBLIC_BASE_URL={settings.PUBLIC_BASE_URL!r} is not https: unsubscribe links (RFC 8058 asks "
        "for https) and tracking tokens would travel in clear. Set an https PUBLIC_BASE_URL, or "
        "ALLOW_HTTP_PUBLIC_URL=true for a trial that is never reached from outside this machine."
    )


@checks.register(checks.Tags.security, deploy=False)
def check_public_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problem = public_url_problem()
    return [checks.Error(problem, id="esp.E001")] if problem else []


def refuse_to_start_without_https() -> None:
    """For the entry points that run no system checks (gunicorn's WSGI app, Celery workers
    and beat): raise before serving anything; on a local run, a line in the log instead."""
    problem = public_url_problem()
    if problem:
        raise ImproperlyConfigured(problem)
    if not public_url_is_https():
        logger.warning(
            "PUBLIC_BASE_URL %s is plain http: fine on this machine; a public server needs https.",
            settings.PUBLIC_BASE_URL,
        )
