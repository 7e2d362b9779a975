"""Scopes: each API view names the scope a key needs for reading and for writing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from esp.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class HasApiKeyScope(BasePermission):
    """An authenticated key with the view's `read_scope` (safe methods) or `write_scope`.
    A view without the scope attribute for a method refuses that method: nothing is open by
    omission."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated(_("An API key is required."))
        attribute = "read_scope" if request.method in SAFE_METHODS else "write_scope"
        scope = getattr(view, attribute, None)
        if scope == "":  # any valid key (the API root, "who am I")
            return True
        if scope is None or not request.auth.has_scope(scope):
            raise exceptions.PermissionDenied(
                _("This API key lacks the scope %(scope)s.") % {"scope": scope or attribute}
            )
        return True
