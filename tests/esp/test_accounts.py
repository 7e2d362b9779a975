"""People: sign-up, login, password change and reset, invitations, workspaces, languages."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from esp import services
from esp.models import Invitation, Membership, OutboxMessage, Role, User, Workspace
from tests.conftest import logged_in
from tests.factories import PASSWORD, member

LINK = re.compile(r"https?://\S+")


@pytest.mark.django_db
def test_sign_up_creates_workspace_and_owner() -> None:
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {
            "email": "Ana@Shop.Example",
            "password": PASSWORD,
            "workspace_name": "Ana's Shop",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="ana@shop.example")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER and membership.workspace.name == "Ana's Shop"
    assert "Ana&#x27;s Shop" in client.get("/").content.decode()


@pytest.mark.django_db
def test_sign_up_errors_are_shown_inline_and_nothing_is_created() -> None:
    response = Client().post("/accounts/signup/", {"email": "not-an-email", "password": "123", "workspace_name": ""})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'aria-invalid="true"' in page and "Enter a valid email address" in page
    assert not User.objects.filter(email="not-an-email").exists() and not Workspace.objects.filter(name="").exists()


@pytest.mark.django_db
def test_sign_up_with_a_taken_address(acme_owner: User) -> None:
    response = Client().post(
        "/accounts/signup/", {"email": "OWNER@acme.test", "password": PASSWORD, "workspace_name": "X"}
    )
    assert response.status_code == 400 and "exists already" in response.content.decode()


@pytest.mark.django_db
def test_login_with_email_and_logout(acme_owner: User) -> None:
    client = Client()
    assert client.post("/accounts/login/", {"username": "owner@acme.test", "password": PASSWORD}).status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_pages_need_login(acme: Workspace) -> None:
    response = Client().get("/settings/members/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_password_change_ends_other_sessions(acme_owner: User) -> None:
    here, elsewhere = Client(), Client()
    for client in (here, elsewhere):
        client.post("/accounts/login/", {"username": acme_owner.email, "password": PASSWORD})
    response = here.post(
        "/accounts/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a new long passphrase",
            "new_password2": "a new long passphrase",
        },
    )
    assert response.status_code == 302
    assert here.get("/").status_code == 200  # the session that changed it stays
    assert elsewhere.get("/").status_code == 302  # every other session is logged out


@pytest.mark.django_db
def test_password_reset_goes_through_the_outbox(acme_owner: User) -> None:
    client = Client()
    assert client.post("/accounts/password/reset/", {"email": acme_owner.email}).status_code == 302
    mail = OutboxMessage.objects.get()
    assert mail.to == [acme_owner.email] and mail.workspace is None and mail.html_body
    link = LINK.search(mail.text_body).group(0)
    form_url = client.get(link).url  # Django swaps the token into the session
    response = client.post(form_url, {"new_password1": "brand new passphrase", "new_password2": "brand new passphrase"})
    assert response.status_code == 302
    assert Client().login(username=acme_owner.email, password="brand new passphrase")
    # The owner finds their own reset mail on the outbox page; other members do not.
    acme_owner.refresh_from_db()
    assert "Reset your Mini ESP password" in logged_in(acme_owner).get("/settings/outbox/").content.decode()
    colleague = member(acme_owner.memberships.get().workspace, Role.VIEWER)
    assert "Reset your Mini ESP password" not in logged_in(colleague).get("/settings/outbox/").content.decode()


@pytest.mark.django_db
def test_password_reset_for_unknown_address_reveals_nothing(acme: Workspace) -> None:
    assert Client().post("/accounts/password/reset/", {"email": "nobody@example.com"}).status_code == 302
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_invite_a_new_person(
    acme: Workspace,
    acme_owner: User,
    acme_client: Client,
    run_tasks_now: None,
    django_capture_on_commit_callbacks: object,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = acme_client.post("/settings/members/", {"email": "New.Viewer@Example.com", "role": "viewer"})
    assert response.status_code == 302
    mail = OutboxMessage.objects.get(workspace=acme)
    assert mail.to == ["new.viewer@example.com"] and "Acme" in mail.subject
    link = LINK.search(mail.text_body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    invitee = Client()
    assert invitee.get(f"/{path}").status_code == 200
    response = invitee.post(f"/{path}", {"password": PASSWORD})
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="new.viewer@example.com")
    assert membership.workspace == acme and membership.role == Role.VIEWER
    assert invitee.get(f"/{path}").status_code == 404  # used: the link is dead


@pytest.mark.django_db
def test_existing_user_accepts_invitation_and_switches_workspaces(
    acme: Workspace, acme_owner: User, globex: Workspace
) -> None:
    globex_user = member(globex, Role.OWNER, email="both@example.com")
    invitation = services.invitation_create(
        workspace=acme, email="both@example.com", role=Role.MARKETER, invited_by=acme_owner
    )
    client = logged_in(globex_user)
    token = services.invitation_token(invitation)
    assert client.post(f"/invite/{token}/").status_code == 302
    assert "Acme" in client.get("/").content.decode()  # joining switches to the new workspace
    client.post("/workspaces/switch/", {"workspace_id": globex.pk})
    assert "<h1>Globex</h1>" in client.get("/").content.decode()


@pytest.mark.django_db
def test_invitation_for_someone_else_is_refused(acme: Workspace, acme_owner: User, globex_owner: User) -> None:
    invitation = services.invitation_create(
        workspace=acme, email="invited@example.com", role=Role.OWNER, invited_by=acme_owner
    )
    response = logged_in(globex_owner).post(f"/invite/{services.invitation_token(invitation)}/")
    assert response.status_code == 400
    assert not Membership.objects.filter(workspace=acme, user=globex_owner).exists()


@pytest.mark.django_db
def test_expired_revoked_and_forged_invitations_are_dead(acme: Workspace, acme_owner: User) -> None:
    expired = services.invitation_create(workspace=acme, email="a@example.com", role=Role.VIEWER, invited_by=acme_owner)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    revoked = services.invitation_create(workspace=acme, email="b@example.com", role=Role.VIEWER, invited_by=acme_owner)
    services.invitation_revoke(workspace=acme, invitation_id=revoked.pk)
    for invitation in (expired, revoked):
        assert Client().get(f"/invite/{services.invitation_token(invitation)}/").status_code == 404
    assert Client().get("/invite/forged-token/").status_code == 404


@pytest.mark.django_db
def test_a_workspace_keeps_an_owner(acme: Workspace, acme_owner: User, acme_client: Client) -> None:
    own = acme_owner.memberships.get()
    acme_client.post(f"/settings/members/{own.pk}/role/", {"role": "viewer"})
    acme_client.post(f"/settings/members/{own.pk}/remove/")
    own.refresh_from_db()
    assert own.role == Role.OWNER


@pytest.mark.django_db
def test_owner_changes_roles_and_removes_members(acme: Workspace, acme_client: Client) -> None:
    colleague = member(acme, Role.VIEWER).memberships.get()
    acme_client.post(f"/settings/members/{colleague.pk}/role/", {"role": "marketer"})
    colleague.refresh_from_db()
    assert colleague.role == Role.MARKETER
    acme_client.post(f"/settings/members/{colleague.pk}/remove/")
    assert not Membership.objects.filter(pk=colleague.pk).exists()


@pytest.mark.django_db
def test_workspace_settings_validate_and_save(acme: Workspace, acme_client: Client) -> None:
    bad = acme_client.post(
        "/settings/workspace/", {"name": "", "time_zone": "Mars/Olympus", "default_from_email": "nope"}
    )
    assert bad.status_code == 400
    good = acme_client.post(
        "/settings/workspace/",
        {
            "name": "Acme EU",
            "time_zone": "Europe/Sofia",
            "default_from_name": "Acme",
            "default_from_email": "news@acme.test",
            "postal_address": "1 Road, Sofia",
            "language": "ru",
        },
    )
    assert good.status_code == 302
    acme.refresh_from_db()
    assert acme.name == "Acme EU" and acme.time_zone == "Europe/Sofia" and acme.can_send_marketing
    assert acme.language == "ru"  # the emails' built-in texts
    # A form posted without the language (a script written before it existed) keeps it.
    again = {"name": "Acme EU", "time_zone": "Europe/Sofia", "default_from_email": "news@acme.test"}
    assert acme_client.post("/settings/workspace/", again).status_code == 302
    acme.refresh_from_db()
    assert acme.language == "ru"


@pytest.mark.django_db
def test_user_without_workspace_is_sent_to_create_one() -> None:
    from tests.factories import UserFactory

    client = logged_in(UserFactory())
    assert client.get("/").url == "/workspaces/new/"
    assert client.post("/workspaces/new/", {"name": "Second shop"}).status_code == 302
    assert "Second shop" in client.get("/").content.decode()


@pytest.mark.django_db
def test_language_choice_is_kept_per_user(acme_owner: User, acme_client: Client) -> None:
    acme_client.post("/i18n/setlang/", {"language": "ru", "next": "/"})
    acme_owner.refresh_from_db()
    assert acme_owner.language == "ru"
    fresh = logged_in(acme_owner)  # another browser, no language cookie
    assert 'lang="ru"' in fresh.get("/").content.decode()
