"""Roles are enforced by the views themselves, on every page and API endpoint: a viewer can
look but not touch; a marketer cannot manage members or API keys. The walk reuses the URL
walker of the isolation tests, so new pages are covered without editing this file."""

from __future__ import annotations

import pytest
from django.test import Client

from esp.models import ApiKey, Membership, Role, Workspace
from esp.web import WorkspaceView
from tests.conftest import logged_in
from tests.esp.test_isolation import OBJECT_IDS, Route, workspace_routes
from tests.factories import member

WRITE_METHODS = ("post", "put", "patch", "delete")


def _view_class(route: Route) -> type | None:
    return getattr(route.callback, "view_class", None) or getattr(route.callback, "cls", None)


@pytest.fixture
def own_ids(acme: Workspace) -> dict[str, int]:
    return {kwarg: make(acme) for kwarg, make in OBJECT_IDS.items()}


def _writes(client: Client, own_ids: dict[str, int]) -> dict[str, int]:
    statuses = {}
    for route in workspace_routes():
        # A view that lets every member write (their own KPI digest) checks whose row it is
        # itself; tests/analytics/test_digest.py holds it to that.
        if getattr(_view_class(route), "write_role", None) == Role.VIEWER:
            continue
        for method in WRITE_METHODS:
            if method in route.methods():
                statuses[f"{method.upper()} /{route.path}"] = getattr(client, method)(route.url(own_ids)).status_code
    return statuses


def test_every_workspace_page_is_a_workspace_view() -> None:
    """So the role check in WorkspaceView.dispatch covers every page (API views have theirs)."""
    pages = [r for r in workspace_routes() if not r.is_api]
    assert pages
    for route in pages:
        view_class = _view_class(route)
        assert view_class is not None and issubclass(view_class, WorkspaceView), route.path


@pytest.mark.django_db
def test_viewer_gets_403_on_every_write(acme: Workspace, acme_owner: object, own_ids: dict[str, int]) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    statuses = _writes(viewer, own_ids)
    assert statuses, "no write endpoints were walked"
    allowed = {call: status for call, status in statuses.items() if status != 403}
    assert not allowed, f"a viewer could write: {allowed}"
    assert Membership.objects.filter(workspace=acme).count() >= 2  # nothing was removed
    assert not ApiKey.objects.filter(workspace=acme, revoked_at__isnull=False).exists()


@pytest.mark.django_db
def test_viewer_can_read_every_page_but_the_owners_forms(acme: Workspace, own_ids: dict[str, int]) -> None:
    # API keys and the form for a new provider's credentials are the owner's alone.
    owner_only = ("settings/api-keys", "settings/sending/providers/new/")
    # The confirmation page of a delete is the first step of the change: not a viewer's.
    confirmations = (
        "audience/contacts/<contact_id>/delete/", "audience/fields/<field_id>/delete/",
        "settings/members/<member_id>/remove/", "series/<series_id>/publish/", "series/<series_id>/pause/",
        "series/<series_id>/resume/", "series/<series_id>/archive/", "series/<series_id>/webhook-secret/",
        "broadcasts/<broadcast_id>/schedule/", "broadcasts/<broadcast_id>/cancel/", "series/<series_id>/send-to-me/",
    )  # fmt: skip
    viewer = logged_in(member(acme, Role.VIEWER))
    for route in workspace_routes():
        if "get" in route.methods():
            status = viewer.get(route.url(own_ids)).status_code
            expected = 403 if route.path.startswith(owner_only) or route.path in confirmations else 200
            assert status == expected, route.path


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/settings/members/", "/settings/workspace/", "/settings/api-keys/"])
def test_marketer_cannot_manage_members_keys_or_workspace(acme: Workspace, path: str) -> None:
    marketer = logged_in(member(acme, Role.MARKETER))
    assert (
        marketer.post(
            path, {"email": "x@example.com", "role": "owner", "name": "k", "scopes": ["contacts:read"]}
        ).status_code
        == 403
    )


@pytest.mark.django_db
def test_marketer_cannot_change_roles(acme: Workspace, acme_owner: object, own_ids: dict[str, int]) -> None:
    marketer_user = member(acme, Role.MARKETER)
    marketer = logged_in(marketer_user)
    own = marketer_user.memberships.get(workspace=acme)
    assert marketer.post(f"/settings/members/{own.pk}/role/", {"role": "owner"}).status_code == 403
    own.refresh_from_db()
    assert own.role == Role.MARKETER


@pytest.mark.django_db
def test_menus_hide_what_the_role_cannot_do(acme: Workspace) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    page = viewer.get("/settings/members/").content.decode()
    assert "Send invitation" not in page and "Change role" not in page
    assert "/settings/api-keys/" not in viewer.get("/").content.decode()


@pytest.mark.django_db
def test_api_session_roles(acme: Workspace) -> None:
    """The API accepts a browser session too; a viewer's role grants read scopes only."""
    viewer = logged_in(member(acme, Role.VIEWER))
    assert viewer.get("/api/v1/outbox/messages").status_code == 200
    assert viewer.get("/api/v1/me").json()["workspace"]["slug"] == "acme"
