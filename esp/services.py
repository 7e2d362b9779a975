"""Writes for tenancy and people. Every function takes the workspace it acts in; a row of
another workspace is never found (Http404), so cross-workspace writes cannot happen."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from esp import attempts
from esp.models import ApiKey, ApiScope, Invitation, Membership, Role, User, Workspace, hash_secret
from esp.queue import enqueue_after_commit

API_KEY_PREFIX = "esk_"
_INVITATION_SALT = "esp.invitation"


# --- workspaces and sign-up -----------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def workspace_create(*, name: str, owner: User, time_zone: str = "UTC") -> Workspace:
    workspace = Workspace.objects.create(
        name=name.strip(),
        slug=_unique_slug(name),
        time_zone=time_zone,
        default_from_email=owner.email,
        default_from_name=name.strip(),
    )
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


@transaction.atomic
def user_sign_up(*, email: str, password: str, workspace_name: str, language: str = "") -> tuple[User, Workspace]:
    user = User.objects.create_user(email=email, password=password, language=language)
    return user, workspace_create(name=workspace_name, owner=user)


@transaction.atomic
def workspace_update(
    *,
    workspace: Workspace,
    name: str,
    time_zone: str,
    default_from_name: str,
    default_from_email: str,
    postal_address: str,
    language: str | None = None,
    currency: str | None = None,
) -> Workspace:
    workspace.name = name.strip()
    if language is not None:
        workspace.language = language
    if currency is not None:
        workspace.currency = currency
    workspace.time_zone = time_zone
    workspace.default_from_name = default_from_name.strip()
    workspace.default_from_email = default_from_email.strip()
    workspace.postal_address = postal_address.strip()
    workspace.save()
    return workspace


# --- members and roles ----------------------------------------------------------------------


def _lock_owners(workspace: Workspace) -> int:
    """Count owners under a row lock so two concurrent demotions cannot both pass the
    'last owner' check."""
    owners = Membership.objects.select_for_update().in_workspace(workspace).filter(role=Role.OWNER)
    return len(list(owners))


@transaction.atomic
def membership_set_role(*, workspace: Workspace, membership_id: int, role: str) -> Membership:
    membership = get_object_or_404(Membership.objects.in_workspace(workspace), pk=membership_id)
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    if membership.role == Role.OWNER and role != Role.OWNER and _lock_owners(workspace) <= 1:
        raise ValidationError({"role": _("A workspace needs at least one owner.")})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, workspace: Workspace, membership_id: int) -> None:
    membership = get_object_or_404(Membership.objects.in_workspace(workspace), pk=membership_id)
    if membership.role == Role.OWNER and _lock_owners(workspace) <= 1:
        raise ValidationError(_("A workspace needs at least one owner."))
    membership.delete()


# --- invitations ----------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"id": invitation.pk, "ws": invitation.workspace_id}, salt=_INVITATION_SALT)


def invitation_url(invitation: Invitation) -> str:
    return f"{settings.PUBLIC_BASE_URL}/invite/{invitation_token(invitation)}/"


def invitation_from_token(token: str) -> Invitation | None:
    """The open invitation a link points to, or None if the link is forged, expired, revoked
    or already used."""
    max_age = timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=_INVITATION_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    invitation = (
        Invitation.objects.select_related("workspace").filter(pk=data.get("id"), workspace_id=data.get("ws")).first()
    )
    return invitation if invitation and invitation.is_open else None


@transaction.atomic
def invitation_create(*, workspace: Workspace, email: str, role: str, invited_by: User) -> Invitation:
    from esp.tasks import send_invitation_email  # tasks import services; avoid the cycle

    email = User.objects.normalize_email(email.strip()).lower()
    # Each invitation is a mail to anyone's address: a user sends a bounded number of them.
    wait = attempts.hit([(attempts.INVITE_USER, str(invited_by.pk))])
    if wait is not None:
        attempts.logger.warning("invitation refused (too many): user=%s workspace=%s", invited_by.pk, workspace.pk)
        minutes = attempts.minutes(wait)
        message = ngettext(
            "Too many invitations. Try again in %(minutes)d minute.",
            "Too many invitations. Try again in %(minutes)d minutes.",
            minutes,
        )
        raise ValidationError({"email": message % {"minutes": minutes}})
    if Membership.objects.in_workspace(workspace).filter(user__email=email).exists():
        raise ValidationError({"email": _("%(email)s is already a member.") % {"email": email}})
    # A new invitation replaces an open one for the same address.
    Invitation.objects.in_workspace(workspace).filter(
        email=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
    ).update(revoked_at=timezone.now())
    invitation = Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
    )
    enqueue_after_commit(send_invitation_email, invitation.pk)
    return invitation


@transaction.atomic
def invitation_revoke(*, workspace: Workspace, invitation_id: int) -> None:
    invitation = get_object_or_404(Invitation.objects.in_workspace(workspace), pk=invitation_id)
    if invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        raise ValidationError(_("This invitation is no longer valid."))
    if invitation.email != user.email:
        raise ValidationError(
            _("This invitation is for %(email)s. Log in with that address to accept it.") % {"email": invitation.email}
        )
    membership, _created = Membership.objects.get_or_create(
        workspace=invitation.workspace,
        user=user,
        defaults={"role": invitation.role},
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return membership


@transaction.atomic
def invitation_accept_as_new_user(*, invitation: Invitation, password: str) -> Membership:
    """A person without an account follows the link: the account is made for the invited
    address (so no address check is needed) and joins in the same transaction."""
    user = User.objects.create_user(email=invitation.email, password=password)
    return invitation_accept(invitation=invitation, user=user)


# --- API keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    secret: str  # the full key: shown to its creator once, never stored


@transaction.atomic
def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    scopes: list[str],
    created_by: User | None,
    form_token: str = "",
) -> CreatedApiKey:
    if form_token and ApiKey.objects.in_workspace(workspace).filter(form_token=form_token).exists():
        raise ValidationError(_("This form was submitted already: the key exists and its secret was shown then."))
    unknown = set(scopes) - set(ApiScope.values)
    if unknown:
        raise ValidationError({"scopes": _("Unknown scopes: %(scopes)s") % {"scopes": ", ".join(sorted(unknown))}})
    if not scopes:
        raise ValidationError({"scopes": _("Choose at least one scope.")})
    for _attempt in range(3):
        prefix = secrets.token_hex(4)
        secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    workspace=workspace,
                    name=name.strip(),
                    prefix=prefix,
                    key_hash=hash_secret(secret),
                    scopes=sorted(set(scopes)),
                    created_by=created_by,
                    form_token=form_token,
                )
            return CreatedApiKey(api_key=api_key, secret=secret)
        except IntegrityError as error:
            if form_token and "api_key_unique_form_token" in str(error):
                raise ValidationError(
                    _("This form was submitted already: the key exists and its secret was shown then.")
                ) from None
            continue  # a prefix collision (1 in 4 billion): draw again
    raise RuntimeError("Could not draw a unique API key prefix.")


@transaction.atomic
def api_key_revoke(*, workspace: Workspace, api_key_id: int) -> ApiKey:
    api_key = get_object_or_404(ApiKey.objects.in_workspace(workspace), pk=api_key_id)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


# Writing last_used_at on every request would turn each API read into a write; a minute's
# precision is plenty for "is this key still in use?".
_LAST_USED_PRECISION = timedelta(minutes=1)


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The active key whose hash matches, or None. Lookup by hash: no timing oracle."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    api_key = (
        ApiKey.objects.select_related("workspace").filter(key_hash=hash_secret(secret), revoked_at__isnull=True).first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
