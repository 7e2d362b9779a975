from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from esp.models import Role
from esp.selectors import memberships_of_user


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The current workspace, the user's other workspaces (switcher) and role flags for menus.
    The flags only hide buttons; the views enforce the roles themselves."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"current_workspace": None}
    return {
        "current_workspace": membership.workspace,
        "current_membership": membership,
        "user_memberships": memberships_of_user(request.user),  # type: ignore[arg-type]
        "can_write": Role.at_least(membership.role, Role.MARKETER),
        "is_owner": membership.role == Role.OWNER,
    }
