"""One rule for the service's own mail: the recipient's language when known (their account),
else the workspace's language of emails, never the language of whoever caused the mail."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import translation

from audiences.models import Subscription
from audiences.services import ConsentContext, contact_save, list_save, subscription_subscribe
from esp import services
from esp.models import OutboxMessage, Role, User, Workspace
from esp.tasks import send_invitation_email
from tests.factories import member

pytestmark = pytest.mark.django_db


def _subject_in(text: str, language: str, **values: str) -> str:
    with translation.override(language):
        return translation.gettext(text) % values


def _invite(workspace: Workspace, inviter: User, email: str) -> OutboxMessage:
    invitation = services.invitation_create(workspace=workspace, email=email, role=Role.VIEWER, invited_by=inviter)
    OutboxMessage.objects.all().delete()
    send_invitation_email(invitation.pk)
    return OutboxMessage.objects.get()


def test_invitation_to_a_new_address_is_in_the_workspaces_language(acme: Workspace) -> None:
    Workspace.objects.filter(pk=acme.pk).update(language="ru")
    acme.refresh_from_db()
    english_owner = member(acme, Role.OWNER, email="boss@acme.test", language="en")
    mail = _invite(acme, english_owner, "new@example.com")
    assert mail.subject == _subject_in("You are invited to %(workspace)s", "ru", workspace="Acme")
    assert mail.subject != _subject_in("You are invited to %(workspace)s", "en", workspace="Acme")


def test_invitation_to_a_known_person_is_in_their_own_language(acme: Workspace) -> None:
    Workspace.objects.filter(pk=acme.pk).update(language="ru")
    acme.refresh_from_db()
    russian_owner = member(acme, Role.OWNER, email="boss@acme.test", language="ru")
    User.objects.create_user(email="ann@example.com", password="x" * 12, language="en")
    mail = _invite(acme, russian_owner, "ann@example.com")
    assert mail.subject == "You are invited to Acme"


def test_double_opt_in_mail_without_a_contact_locale_uses_the_workspaces_language(
    acme: Workspace, django_capture_on_commit_callbacks: object, run_tasks_now: None
) -> None:
    Workspace.objects.filter(pk=acme.pk).update(language="ru")
    acme.refresh_from_db()
    news = list_save(workspace=acme, data={"name": "News", "is_public": True, "double_opt_in": True})
    ana = contact_save(workspace=acme, data={"email": "ana@example.com"})[0]
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        subscription_subscribe(workspace=acme, contact=ana, mailing_list=news, context=ConsentContext("form"))
    assert Subscription.objects.get().status == "pending"
    mail = OutboxMessage.objects.get()
    assert mail.subject == _subject_in("Please confirm your subscription to %(list)s", "ru", list="News")


def test_password_reset_is_in_the_accounts_language_not_the_pages(acme: Workspace) -> None:
    member(acme, Role.OWNER, email="ivan@acme.test", language="ru")
    Client(HTTP_ACCEPT_LANGUAGE="en").post("/accounts/password/reset/", {"email": "ivan@acme.test"})
    mail = OutboxMessage.objects.get()
    with translation.override("ru"):
        expected = translation.gettext("Reset your Mini ESP password")
    assert expected != "Reset your Mini ESP password"
    assert expected in mail.subject
