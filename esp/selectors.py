"""Reads for tenancy and people, always scoped to a workspace (or to the asking user)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from esp.models import ApiKey, Invitation, Membership, OutboxMessage, User, Workspace


def memberships_of_user(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name", "id")


def membership_of_user(*, user: User, workspace_id: int | None) -> Membership | None:
    """The user's membership in the given workspace, else in their first workspace."""
    memberships = memberships_of_user(user)
    if workspace_id is not None:
        chosen = memberships.filter(workspace_id=workspace_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def workspace_members(*, workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.in_workspace(workspace).select_related("user").order_by("user__email")


def membership_get(*, workspace: Workspace, membership_id: int) -> Membership:
    return get_object_or_404(workspace_members(workspace=workspace), pk=membership_id)


def open_invitations(*, workspace: Workspace) -> QuerySet[Invitation]:
    from django.utils import timezone

    return (
        Invitation.objects.in_workspace(workspace)
        .filter(
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .select_related("invited_by")
    )


def api_keys(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return ApiKey.objects.in_workspace(workspace).select_related("created_by")


def api_key_get(*, workspace: Workspace, api_key_id: int) -> ApiKey:
    return get_object_or_404(api_keys(workspace=workspace), pk=api_key_id)


def outbox_messages(*, workspace: Workspace, user: User | None = None) -> QuerySet[OutboxMessage]:
    """The workspace's mail, plus account mail (no workspace) addressed to the asking user —
    so a person can find their own password-reset mail, and nobody else's."""
    visible = Q(workspace=workspace)
    if user is not None:
        visible |= Q(workspace__isnull=True, to__contains=[user.email])
    return OutboxMessage.objects.filter(visible).order_by("-id")


def outbox_message_get(*, workspace: Workspace, message_id: int, user: User | None = None) -> OutboxMessage:
    return get_object_or_404(outbox_messages(workspace=workspace, user=user), pk=message_id)
