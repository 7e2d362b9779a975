"""Celery entry points of the audiences app: take ids, re-read rows, call one service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core import signing
from django.utils.translation import gettext as _
from django.utils.translation import override

from audiences.models import Subscription, SubscriptionStatus
from esp.mail import send_templated_mail

CONFIRM_SALT = "audiences.confirm"


def confirmation_url(subscription: Subscription) -> str:
    token = signing.dumps({"s": subscription.pk, "w": subscription.workspace_id}, salt=CONFIRM_SALT)
    return f"{settings.PUBLIC_BASE_URL}/subscribe/confirm/{token}/"


@shared_task(name="audiences.send_confirmation_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_confirmation_email(subscription_id: int) -> None:
    subscription = (
        Subscription.objects.select_related("contact", "mailing_list", "workspace").filter(pk=subscription_id).first()
    )
    if subscription is None or subscription.status != SubscriptionStatus.PENDING:
        return
    language = (subscription.contact.locale or "en")[:2]
    with override(language if language in dict(settings.LANGUAGES) else "en"):
        send_templated_mail(
            to=subscription.contact.email,
            subject=_("Please confirm your subscription to %(list)s") % {"list": subscription.mailing_list.name},
            template="mail/confirm_subscription",
            context={"subscription": subscription, "url": confirmation_url(subscription)},
            workspace=subscription.workspace,
        )
