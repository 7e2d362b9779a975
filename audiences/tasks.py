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


# --- imports and exports: thin entry points; the job rows hold the state (audiences/jobs.py) ---


@shared_task(name="audiences.run_import")
def run_import(job_id: int) -> None:
    from audiences.imports import import_run

    import_run(job_id)


@shared_task(name="audiences.run_export")
def run_export(job_id: int) -> None:
    from audiences.exports import export_run

    export_run(job_id)


@shared_task(name="audiences.resume_stalled_imports")
def resume_stalled_imports() -> None:
    """For beat, every minute or so: imports whose worker died are queued again."""
    from audiences.imports import imports_resume_stalled

    imports_resume_stalled()


@shared_task(name="audiences.resume_stalled_exports")
def resume_stalled_exports() -> None:
    from audiences.exports import exports_resume_stalled

    exports_resume_stalled()
