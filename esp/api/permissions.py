"""Scopes: each API view names the scope it needs for reading and for writing.

An API key carries its scopes. A person using the API from the browser (session login, e.g.
the interactive docs) gets the scopes of their role in the current workspace: a viewer reads,
a marketer or owner also writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from esp.models import ApiKey, ApiScope, Membership, Role

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

READ_SCOPES = frozenset(scope for scope in ApiScope.values if scope.endswith(":read"))


def role_scopes(role: str) -> frozenset[str]:
    return frozenset(ApiScope.values) if Role.at_least(role, Role.MARKETER) else READ_SCOPES


def request_membership(request: Request) -> Membership | None:
    """The session user's membership in their current workspace (set by the middleware)."""
    return getattr(request._request, "membership", None)


class HasApiKeyScope(BasePermission):
    """An API key (or session member) with the view's `read_scope` (safe methods) or
    `write_scope`. A view without the scope attribute for a method refuses that method:
    nothing is open by omission. An empty scope means any authenticated caller."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        attribute = "read_scope" if request.method in SAFE_METHODS else "write_scope"
        scope = getattr(view, attribute, None)
        if isinstance(request.auth, ApiKey):
            granted = frozenset(request.auth.scopes)
        elif request.user is not None and request.user.is_authenticated:
            membership = request_membership(request)
            if membership is None:
                raise exceptions.PermissionDenied(_("You are not a member of any workspace."))
            granted = role_scopes(membership.role)
        else:
            raise exceptions.NotAuthenticated(_("An API key is required."))
        if scope == "":
            return True
        if scope is None or scope not in granted:
            raise exceptions.PermissionDenied(
                _("This API key lacks the scope %(scope)s.") % {"scope": scope or attribute}
                if isinstance(request.auth, ApiKey)
                else _("Your role does not allow %(scope)s.") % {"scope": scope or attribute}
            )
        return True
