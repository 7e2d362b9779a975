"""The base of every workspace page: login, membership and role are checked here, once, for
every view that inherits it — not in templates or menus."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from esp.models import Membership, Role, User, Workspace

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class WorkspaceView(LoginRequiredMixin, View):
    """A page inside the current workspace.

    `read_role` may look (GET), `write_role` may change (POST and other unsafe methods).
    Everyone else gets 403; objects are looked up through selectors that take
    `self.workspace`, so another workspace's object is a 404.
    """

    read_role: str = Role.VIEWER
    write_role: str = Role.MARKETER
    workspace: Workspace
    membership: Membership

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = getattr(request, "membership", None)
        if membership is None:
            return redirect("workspace-create")
        required = self.read_role if request.method in SAFE_METHODS else self.write_role
        if not Role.at_least(membership.role, required):
            raise PermissionDenied
        self.membership = membership
        self.workspace = membership.workspace
        return super().dispatch(request, *args, **kwargs)

    def can(self, role: str) -> bool:
        return Role.at_least(self.membership.role, role)


def request_user(request: HttpRequest) -> User:
    """The logged-in user of a view that required login (narrows the type for services)."""
    assert isinstance(request.user, User)
    return request.user


def confirm_page(
    request: HttpRequest,
    *,
    title: str,
    question: str,
    consequences: list[str],
    button: str,
    cancel: str,
    form: Any = None,
) -> HttpResponse:
    """The page a destructive action shows on GET: what will go, one button that does it (a
    POST to the same URL) and a way back. `cancel` is a URL name or a path."""
    return render(
        request,
        "confirm_action.html",
        {
            "title": title,
            "question": question,
            "consequences": consequences,
            "button": button,
            "cancel": cancel if cancel.startswith("/") else reverse(cancel),
            "action": request.path,
            "form": form,
        },
    )
