"""anymail's tracking webhook view of each ESP, built per request with one provider's secrets.

anymail reads a view's secrets from its init kwargs before Django settings; every kwarg it may
read is passed explicitly (an empty basic-auth list included), so a global ANYMAIL setting can
never stand in for a workspace's own secret. A view accepts a kwarg only when the class has the
attribute (Django's as_view rule), hence the declarations below.

How each request is authenticated:
- Mailgun: its HMAC signature with the webhook signing key (required; a day old at most, its
  token good only for the events it came with), plus basic auth if set;
- Resend: its Svix signature when the signing secret is set, basic auth otherwise or as well;
- SendGrid: its signed event webhook when the verification key is set, basic auth otherwise;
- Amazon SES: basic auth (required: it is also what makes a subscription request ours) and
  Amazon's SNS signature on every message (campaigns.webhooks.sns);
- Postmark, SparkPost, Brevo, Mailjet: basic auth (required) — they sign nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import orjson
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.amazon_ses import AmazonSESBaseWebhookView, AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBasicAuthMixin
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.resend import ResendTrackingWebhookView, SvixWebhookValidationMixin
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView
from django.core.cache import cache
from django.http import HttpRequest

from campaigns.models import ProviderKind
from campaigns.webhooks import sns, svix

logger = logging.getLogger(__name__)


class NotConfigured(Exception):
    """The provider has none of the secrets its webhooks must be checked with."""


class AmazonSesTracking(AmazonSESTrackingWebhookView):
    webhook_secret = None
    verify_sns_signature = True
    auto_confirm_sns_subscriptions = True

    def __init__(self, **kwargs: Any) -> None:
        # anymail's SES init asks boto3 for client parameters (for its own auto-confirm); here
        # the subscription is confirmed without boto3, so that step is left out.
        self.auto_confirm_enabled = kwargs.pop("auto_confirm_sns_subscriptions", True)
        self.verify_signature = kwargs.pop("verify_sns_signature", True)
        self.session_params: dict[str, Any] = {}
        self.client_params: dict[str, Any] = {}
        super(AmazonSESBaseWebhookView, self).__init__(**kwargs)

    def validate_request(self, request: HttpRequest) -> None:
        # Basic auth first: an unauthenticated post must not make us fetch a certificate.
        AnymailBasicAuthMixin.validate_request(self, request)
        if self.verify_signature:
            sns.verify_sns_message(self._parse_sns_message(request))

    def auto_confirm_sns_subscription(self, sns_message: dict[str, Any]) -> None:
        if not self.auto_confirm_enabled:
            return
        # Reached only with valid basic auth (required for SES, see campaigns.webhooks.views):
        # the subscription was set up by whoever holds this provider's secret.
        sns.confirm_subscription(sns_message)


class MailgunTracking(MailgunTrackingWebhookView):
    """Mailgun signs only a timestamp and a token, not the events: one captured request would
    let anyone post any event under its signature. So a signature is good for a day, and its
    token for the events it came with — the same request again (Mailgun's retries, a replay)
    passes and is then counted once by the events' keys; the token with other events is
    refused."""

    webhook_secret = None

    def validate_request(self, request: HttpRequest) -> None:
        super().validate_request(request)
        if request.content_type == "application/json":
            payload = json.loads(request.body.decode("utf-8"))
            token, timestamp = payload["signature"]["token"], payload["signature"]["timestamp"]
            signed_over: Any = payload.get("event-data")
        else:
            token, timestamp = request.POST["token"], request.POST["timestamp"]
            signed_over = sorted((k, v) for k, v in request.POST.lists() if k not in _MAILGUN_SIGNATURE_FIELDS)
        try:
            age = time.time() - float(timestamp)
        except (TypeError, ValueError) as error:
            raise AnymailWebhookValidationFailure("Mailgun webhook with an unreadable timestamp") from error
        if not -MAILGUN_CLOCK_SKEW <= age <= MAILGUN_SIGNATURE_MAX_AGE:
            raise AnymailWebhookValidationFailure("Mailgun webhook signature is too old (or from the future)")
        digest = hashlib.sha256(orjson.dumps(signed_over, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
        key_source = self.webhook_signing_key + str(token).encode()
        key = "webhook-token:mailgun:" + hashlib.sha256(key_source).hexdigest()[:40]
        try:
            if not cache.add(key, digest, timeout=MAILGUN_SIGNATURE_MAX_AGE + MAILGUN_CLOCK_SKEW):
                if cache.get(key) != digest:
                    raise AnymailWebhookValidationFailure("Mailgun webhook token reused with other events")
        except AnymailWebhookValidationFailure:
            raise
        except Exception:  # the cache is down: the signature and its age still hold
            logger.warning("Mailgun webhook tokens cannot be checked (cache down)", exc_info=True)


class PostmarkTracking(PostmarkTrackingWebhookView):
    webhook_secret = None


class SendGridTracking(SendGridTrackingWebhookView):
    webhook_secret = None
    tracking_webhook_verification_key = None


class SparkPostTracking(SparkPostTrackingWebhookView):
    webhook_secret = None


class BrevoTracking(BrevoTrackingWebhookView):
    webhook_secret = None


class MailjetTracking(MailjetTrackingWebhookView):
    webhook_secret = None


class ResendTracking(ResendTrackingWebhookView):
    webhook_secret = None
    signing_secret = None

    def __init__(self, **kwargs: Any) -> None:
        # anymail's Svix mixin would build svix.Webhook (a package not installed here); the
        # same check is campaigns.webhooks.svix, run by validate_request below.
        secret = kwargs.pop("signing_secret", None)
        self.signing_secret = secret
        self._secret = svix.secret_bytes(secret) if secret else None
        self._svix_webhook = None
        self.warn_if_no_basic_auth = self._secret is None
        super(SvixWebhookValidationMixin, self).__init__(**kwargs)

    def validate_request(self, request: HttpRequest) -> None:
        if self._secret is not None:
            svix.verify_svix(self._secret, request.headers, request.body)


# How long a Mailgun signature is good for: its retries run for about 8 hours.
MAILGUN_SIGNATURE_MAX_AGE = 24 * 3600
MAILGUN_CLOCK_SKEW = 5 * 60
_MAILGUN_SIGNATURE_FIELDS = {"signature", "timestamp", "token"}


VIEWS: dict[str, type[Any]] = {
    ProviderKind.SES: AmazonSesTracking,
    ProviderKind.MAILGUN: MailgunTracking,
    ProviderKind.POSTMARK: PostmarkTracking,
    ProviderKind.SENDGRID: SendGridTracking,
    ProviderKind.SPARKPOST: SparkPostTracking,
    ProviderKind.BREVO: BrevoTracking,
    ProviderKind.MAILJET: MailjetTracking,
    ProviderKind.RESEND: ResendTracking,
}

# The ESP's own signature key, where it has one, and whether it alone is enough.
_SIGNATURE_KEY: dict[str, str] = {
    ProviderKind.MAILGUN: "webhook_signing_key",
    ProviderKind.RESEND: "signing_secret",
    ProviderKind.SENDGRID: "tracking_webhook_verification_key",
}


def _basic_auth(value: Any) -> list[str]:
    # "user:password", or several (one a line) while a secret is being rotated.
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def _public_key_body(value: str) -> str:
    # anymail adds the PEM armour itself; a key pasted with it would be armoured twice.
    return "".join(line.strip() for line in value.splitlines() if line.strip() and not line.startswith("-----"))


def view_kwargs(kind: str, credentials: dict[str, Any]) -> dict[str, Any]:
    """as_view kwargs for the provider's view; NotConfigured when nothing would authenticate."""
    basic_auth = _basic_auth(credentials.get("webhook_secret"))
    kwargs: dict[str, Any] = {"webhook_secret": basic_auth}
    signature_name = _SIGNATURE_KEY.get(kind)
    signature_key = str(credentials.get(signature_name) or "").strip() if signature_name else ""
    if kind == ProviderKind.MAILGUN:
        if not signature_key:
            raise NotConfigured("Mailgun webhooks need the webhook signing key")
        kwargs["webhook_signing_key"] = signature_key
    elif kind == ProviderKind.RESEND:
        if not (signature_key or basic_auth):
            raise NotConfigured("Resend webhooks need the signing secret or basic-auth credentials")
        kwargs["signing_secret"] = signature_key or None
    elif kind == ProviderKind.SENDGRID:
        if not (signature_key or basic_auth):
            raise NotConfigured("SendGrid webhooks need the verification key or basic-auth credentials")
        kwargs["tracking_webhook_verification_key"] = _public_key_body(signature_key) or None
    elif not basic_auth:
        raise NotConfigured("this ESP's webhooks need basic-auth credentials")
    return kwargs
