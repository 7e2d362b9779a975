"""POST /webhooks/<webhook_token>/<kind>/tracking/ — an ESP reporting what became of our mail.

The token names the provider (and so the workspace); the kind must be that provider's. anymail's
tracking view of the ESP, built for this request with the provider's secrets, authenticates the
request and parses it; it sends anymail's `tracking` signal once per event, and our receiver
only collects them into the list of the current request (a ContextVar set around the dispatch:
one per thread or task, so concurrent requests never see each other's). They are applied after
the view accepted the request, all messages found in one query.

Answers: 404 (JSON) for an unknown token or a kind that is not the provider's; 403 when the
provider has no secret its webhooks could be checked with; 400 for a bad signature, bad basic
auth or a malformed body (nothing changes); 401 where SNS needs the basic-auth challenge; 200
otherwise — also for events that name no message of ours (logged), since ESPs retry errors.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from anymail.exceptions import AnymailConfigurationError, AnymailError
from anymail.signals import AnymailTrackingEvent, tracking
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from campaigns.crypto import DecryptionError
from campaigns.models import Provider
from campaigns.providers import provider_webhook_credentials
from campaigns.webhooks.esps import VIEWS, NotConfigured, view_kwargs
from campaigns.webhooks.services import tracking_events_apply
from esp.api.errors import api_not_found, error_body

logger = logging.getLogger(__name__)

_collected: ContextVar[list[AnymailTrackingEvent] | None] = ContextVar("campaigns_webhook_events", default=None)


def _collect(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    events = _collected.get()
    if events is not None:
        events.append(event)


for _view in VIEWS.values():
    tracking.connect(_collect, sender=_view, weak=False, dispatch_uid=f"campaigns.webhooks:{_view.__name__}")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(status, code, message), status=status)


@csrf_exempt
def provider_tracking_webhook(request: HttpRequest, webhook_token: str, kind: str) -> HttpResponse:
    provider = Provider.objects.select_related("workspace").filter(webhook_token=webhook_token).first()
    view_class = VIEWS.get(kind)
    if provider is None or provider.kind != kind or view_class is None:
        return api_not_found(request)
    try:
        kwargs = view_kwargs(kind, provider_webhook_credentials(provider))
    except (NotConfigured, DecryptionError) as error:
        logger.warning("webhook refused: %s", error, extra={"provider_id": provider.pk, "kind": kind})
        return _error(403, "not_configured", _("This provider's webhook secrets are not set up."))
    events: list[AnymailTrackingEvent] = []
    token = _collected.set(events)
    try:
        response: HttpResponse = view_class.as_view(**kwargs)(request)
    except (AnymailError, AnymailConfigurationError, ValueError, KeyError, TypeError) as error:
        # AnymailWebhookValidationFailure (bad signature or basic auth), a body anymail could
        # not parse, or an inbound hook pointed here: refused before any event was applied.
        logger.warning("webhook rejected: %s", error, extra={"provider_id": provider.pk, "kind": kind})
        return _error(400, "rejected", _("The webhook request was not accepted."))
    finally:
        _collected.reset(token)
    if response.status_code != 200:
        return response  # e.g. the SNS basic-auth challenge (401)
    applied = tracking_events_apply(provider=provider, events=events)
    return JsonResponse(
        {
            "received": len(events),
            "recorded": applied.recorded,
            "replayed": applied.replayed,
            "unknown": applied.unknown,
            "ignored": applied.ignored,
        }
    )
