"""Celery entry points of the esp app: take ids, re-read rows, call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import override

from esp.mail import account_mail_language, send_templated_mail
from esp.models import Invitation
from esp.services import invitation_url


@shared_task(name="esp.ping", ignore_result=False)
def ping(payload: str = "pong") -> dict[str, str | int]:
    """Round trip through broker, worker and database; used by health checks and tests."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone() or (0,)
    return {"reply": payload, "database": one}


@shared_task(name="esp.send_invitation_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invitation_email(invitation_id: int) -> None:
    invitation = Invitation.objects.select_related("workspace", "invited_by").filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_open:
        return
    with override(account_mail_language(email=invitation.email, workspace=invitation.workspace)):
        send_templated_mail(
            to=invitation.email,
            subject=_("You are invited to %(workspace)s") % {"workspace": invitation.workspace.name},
            template="mail/invitation",
            context={"invitation": invitation, "url": invitation_url(invitation)},
            workspace=invitation.workspace,
        )
