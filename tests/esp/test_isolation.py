"""Tenant isolation, walked over every URL of the site and the API.

For every URL pattern that takes an object id, the id of a `globex` object is requested as an
`acme` member (browser) and with an `acme` API key: each method the view answers must be a 404,
never a 403 that would confirm the object exists. Every list page is checked for `globex`'s
marker text. A new URL pattern is covered automatically; a new kind of object id must be
registered in OBJECT_IDS below, or the walk fails and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.views import APIView

from esp import services
from esp.models import Invitation, Role, Workspace
from tests.conftest import key_client, logged_in
from tests.factories import OutboxMessageFactory, api_key, member

MARKER = "globexsecretmarker"

# Platform-operator pages (superusers only) and public pages that hold no workspace data.
NOT_WORKSPACE_PAGES = (
    "admin/", "accounts/", "i18n/", "healthz", "api/schema/", "api/docs/", "invite/", "workspaces/", "subscribe/",
    "e/", "webhooks/", "favicon.ico",
)  # fmt: skip


def _invitation(workspace: Workspace) -> int:
    inviter = member(workspace, Role.OWNER, email=f"inviter-{workspace.slug}@{MARKER}.test")
    return services.invitation_create(
        workspace=workspace,
        email=f"invitee-{workspace.slug}@{MARKER}.test",
        role=Role.VIEWER,
        invited_by=inviter,
    ).pk


def _membership(workspace: Workspace) -> int:
    user = member(workspace, Role.MARKETER, email=f"member-{workspace.slug}@{MARKER}.test")
    return user.memberships.get(workspace=workspace).pk


def _api_key(workspace: Workspace) -> int:
    return services.api_key_create(
        workspace=workspace, name=f"{MARKER} key", scopes=["contacts:read"], created_by=None
    ).api_key.pk


def _message(workspace: Workspace) -> int:
    return OutboxMessageFactory(workspace=workspace, subject=f"{MARKER} subject", to=[f"to@{MARKER}.test"]).pk


def _contact(workspace: Workspace) -> int:
    from audiences.models import Event
    from audiences.services import contact_save

    contact = contact_save(workspace=workspace, data={"email": f"contact@{MARKER}.test", "first_name": MARKER})[0]
    # An event of the contact, so the timeline, the event explorer and the events API are walked with data.
    Event.objects.create(
        workspace=workspace, contact=contact, type="track", name=f"{MARKER} event", properties={"note": MARKER},
        message_id=f"{MARKER}-{workspace.slug}", occurred_at=contact.created_at,
    )  # fmt: skip
    return contact.pk


def _list(workspace: Workspace) -> int:
    from audiences.services import list_save

    return list_save(workspace=workspace, data={"name": f"{MARKER} list {workspace.slug}"}).pk


def _custom_field(workspace: Workspace) -> int:
    from audiences.models import CustomField

    return CustomField.objects.create(workspace=workspace, key=f"{MARKER}_{workspace.slug}", label=MARKER).pk


def _suppression(workspace: Workspace) -> int:
    from audiences.services import suppression_add

    return suppression_add(workspace=workspace, email=f"suppressed@{MARKER}.test", reason="manual").pk


def _import(workspace: Workspace) -> int:
    """A finished import with an error report (one bad row), so every import URL answers."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from audiences.imports import import_create, import_run, import_start

    csv = f"email,first_name\nok@{MARKER}.test,{MARKER}\nnot-an-address,{MARKER}\n".encode()
    job = import_create(workspace=workspace, user=None, uploaded_file=SimpleUploadedFile(f"{MARKER}.csv", csv))
    import_start(workspace=workspace, job_id=job.pk, mapping={"email": "email", "first_name": "first_name"})
    import_run(job.pk)
    return job.pk


def _export(workspace: Workspace) -> int:
    from audiences.exports import export_create, export_run

    job = export_create(workspace=workspace, user=None, filter={"q": MARKER})
    export_run(job.pk)
    return job.pk


def _bulk_job(workspace: Workspace) -> int:
    from audiences.bulk import bulk_job_create, bulk_job_run
    from audiences.filters import ContactFilter

    job = bulk_job_create(workspace=workspace, user=None, contact_filter=ContactFilter(), action="tag", value=MARKER)
    bulk_job_run(job.pk)
    return job.pk


def _segment(workspace: Workspace) -> int:
    from audiences.segments.services import segment_save

    rules = {"match": "all", "negate": False, "conditions": []}
    return segment_save(workspace=workspace, name=f"{MARKER} segment", rules=rules, description=MARKER).pk


def _email(workspace: Workspace) -> int:
    """A sent campaigns Message (the send log) with an open, to a contact of the workspace."""
    from audiences.models import Contact
    from tests.factories import MessageEventFactory, MessageFactory

    contact = Contact.objects.create(workspace=workspace, email=f"mailed-{workspace.slug}@{MARKER}.test")
    message = MessageFactory(workspace=workspace, contact=contact, subject=f"{MARKER} mail", source=f"tx:{MARKER}")
    MessageEventFactory(message=message, url=f"https://{MARKER}.test/", user_agent=MARKER)
    return message.pk


def _provider(workspace: Workspace) -> int:
    from campaigns.providers.services import provider_create

    return provider_create(
        workspace=workspace, name=f"{MARKER} provider", kind="smtp", credentials={"host": f"smtp.{MARKER}.test"}
    ).pk


def _sender(workspace: Workspace) -> int:
    from campaigns.providers.services import sender_create

    return sender_create(workspace=workspace, from_name=MARKER, from_email=f"news@{MARKER}.test").pk


def _template(workspace: Workspace) -> int:
    from campaigns.content.services import template_create

    mjml = (
        f"<mjml><mj-body><mj-section><mj-column><mj-text>{MARKER}</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    data = {"name": f"{MARKER} template", "subject": f"{MARKER} subject", "mjml": mjml}
    return template_create(workspace=workspace, data=data).pk


def _live_series(workspace: Workspace) -> tuple[int, int]:
    """A live series with one enrollment (a contact entered through the API trigger) and a
    version 2 in draft, so the series page, its steps, versions, dry run and the enrollment's
    page are walked with data."""
    from audiences.models import Contact
    from automations.models import Enrollment, Series
    from automations.services import SeriesInput, enrollment_create, series_create, series_publish, series_update
    from campaigns.models import EmailTemplate

    found = Series.objects.filter(workspace=workspace, name=f"{MARKER} series").first()
    if found is None:
        existing = EmailTemplate.objects.filter(workspace=workspace, name=f"{MARKER} template").first()
        template = existing.pk if existing else _template(workspace)
        found = series_create(
            workspace=workspace,
            data=SeriesInput(
                name=f"{MARKER} series",
                trigger={"type": "api"},
                steps={"steps": [{"key": "hello", "type": "send", "template": template}]},
            ),
        )
        series_publish(workspace=workspace, series_id=found.pk)
        person = Contact.objects.create(workspace=workspace, email=f"enrolled-{workspace.slug}@{MARKER}.test")
        enrollment_create(workspace=workspace, series_id=found.pk, contact=person, key=MARKER, data={"note": MARKER})
        # A second version in draft: the versions API walks a published and a draft version.
        steps = {
            "steps": [
                {"key": "hello", "type": "send", "template": template, "next": "bye"},
                {"key": "bye", "type": "exit"},
            ]
        }
        series_update(workspace=workspace, series_id=found.pk, data=SeriesInput(steps=steps))
    return found.pk, Enrollment.objects.filter(series_id=found.pk).values_list("pk", flat=True).get()


def _series(workspace: Workspace) -> int:
    return _live_series(workspace)[0]


def _enrollment(workspace: Workspace) -> int:
    return _live_series(workspace)[1]


def _version_number(workspace: Workspace) -> int:
    # Versions are numbered per series from 1: every series made above has a version 1.
    return 1


def _step_key(workspace: Workspace) -> str:
    # The key of the step of the series made above (its live version has it).
    _live_series(workspace)
    return "hello"


def _broadcast(workspace: Workspace) -> int:
    """A broadcast with a started A/B test (its contact tagged in), so its test page is walked
    with figures."""
    from audiences.models import Contact, MailingList, Subscription, SubscriptionStatus
    from campaigns.broadcasts.ab import AbInput, VariantInput, ab_configure
    from campaigns.broadcasts.services import BroadcastInput, broadcast_create, broadcast_schedule
    from campaigns.models import EmailTemplate

    existing = EmailTemplate.objects.filter(workspace=workspace, name=f"{MARKER} template").first()
    template = existing.pk if existing else _template(workspace)
    news = MailingList.objects.create(workspace=workspace, name=f"{MARKER} broadcast list")
    person = Contact.objects.create(workspace=workspace, email=f"ab-{workspace.slug}@{MARKER}.test")
    Subscription.objects.create(
        workspace=workspace, contact=person, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED
    )
    broadcast = broadcast_create(
        workspace=workspace,
        data=BroadcastInput(name=f"{MARKER} broadcast", template=template, include_lists=[news.pk]),
    )
    variants = [VariantInput(subject=f"{MARKER} A"), VariantInput(subject=f"{MARKER} B")]
    ab_configure(workspace=workspace, broadcast_id=broadcast.pk, data=AbInput(variants=variants, test_percent=50))
    broadcast_schedule(workspace=workspace, broadcast_id=broadcast.pk)
    _reported(workspace, broadcast.pk)
    return broadcast.pk


def _reported(workspace: Workspace, broadcast_id: int) -> None:
    """A message of the broadcast sent and counted in the report rollups, so the reports
    (pages, CSV files, API) are walked with its figures and its name."""
    from django.utils import timezone

    from analytics.rollups import messages_note_settled, rollups_refresh
    from campaigns.models import Message

    sent = Message.objects.create(
        workspace=workspace, source=f"broadcast:{broadcast_id}", to_email=f"reported@{MARKER}.test", state="sent",
        sent_at=timezone.now(),
    )  # fmt: skip
    messages_note_settled([sent.pk])
    rollups_refresh()


def _goal(workspace: Workspace) -> int:
    import datetime as dt
    from decimal import Decimal

    from analytics.goals.services import GoalInput, goal_save

    data = GoalInput(f"{MARKER} goal", "orders", "absolute", Decimal(10), dt.date(2026, 1, 1), dt.date(2026, 3, 1))
    return goal_save(workspace=workspace, data=data).pk


# URL keyword -> how to make one such object in a workspace, returning its id (or key).
OBJECT_IDS: dict[str, Callable[[Workspace], int | str]] = {
    "member_id": _membership,
    "invitation_id": _invitation,
    "api_key_id": _api_key,
    "message_id": _message,
    "contact_id": _contact,
    "list_id": _list,
    "field_id": _custom_field,
    "suppression_id": _suppression,
    "import_id": _import,
    "export_id": _export,
    "bulk_job_id": _bulk_job,
    "segment_id": _segment,
    "provider_id": _provider,
    "sender_id": _sender,
    "email_id": _email,
    "template_id": _template,
    "series_id": _series,
    "version_number": _version_number,
    "enrollment_id": _enrollment,
    "step_key": _step_key,
    "broadcast_id": _broadcast,
    "recipe_key": lambda workspace: "abandoned_cart",
    "goal_id": _goal,
}
# Keywords naming what every workspace shares (the recipes gallery): the same URL is everyone's,
# so the walk checks those pages answer, not that another workspace gets a 404.
SHARED_KEYWORDS = frozenset({"recipe_key"})

# API endpoints that answer only a query (without one, a 400 by design), so the walk cannot call
# them bare; each is tested for isolation in its own tests (tests/audiences/test_api_contacts.py).
QUERY_ONLY_ENDPOINTS = ("api/v1/contacts/lookup",)


@dataclass(frozen=True)
class Route:
    path: str  # with <kwarg> placeholders
    callback: Any
    kwargs: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        # v1/: the tracking API (Segment spec) at the site root, API keys only.
        return self.path.startswith(("api/", "v1/"))

    def methods(self) -> list[str]:
        view_class = getattr(self.callback, "view_class", None) or getattr(self.callback, "cls", None)
        if view_class is None:
            return ["get", "post"]
        names = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]
        if issubclass(view_class, APIView) and hasattr(view_class, "retrieve"):
            names = [m for m in names if m != "post"]
        return names

    def url(self, ids: dict[str, int | str]) -> str:
        url = "/" + self.path
        for kwarg in self.kwargs:
            url = url.replace(f"<{kwarg}>", str(ids[kwarg]))
        return url


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[Route]:
    for entry in patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            full = prefix + route
            kwargs = tuple(entry.pattern.converters) if hasattr(entry.pattern, "converters") else ()
            # Normalise "<int:member_id>" into "<member_id>" for substitution.
            for kwarg in kwargs:
                for converter in ("int:", "str:", "slug:", "uuid:", "path:"):
                    full = full.replace(f"<{converter}{kwarg}>", f"<{kwarg}>")
            yield Route(full, entry.callback, kwargs)


def workspace_routes() -> list[Route]:
    return [
        r
        for r in _walk(get_resolver().url_patterns)
        if not r.path.startswith(NOT_WORKSPACE_PAGES) and r.path not in QUERY_ONLY_ENDPOINTS
    ]


def test_every_object_id_in_a_url_is_registered() -> None:
    unknown = {k for r in workspace_routes() for k in r.kwargs} - set(OBJECT_IDS)
    assert not unknown, f"Register a factory in OBJECT_IDS for these URL keywords: {sorted(unknown)}"


def test_the_walk_covers_pages_and_api() -> None:
    routes = workspace_routes()
    assert any(r.is_api and r.kwargs for r in routes)
    assert any(not r.is_api and r.kwargs for r in routes)


@pytest.fixture
def globex_ids(globex: Workspace) -> dict[str, int | str]:
    return {kwarg: make(globex) for kwarg, make in OBJECT_IDS.items()}


@pytest.fixture
def acme_ids(acme: Workspace) -> dict[str, int | str]:
    return {kwarg: make(acme) for kwarg, make in OBJECT_IDS.items()}


def _request(client: Client | APIClient, method: str, url: str) -> int:
    return getattr(client, method)(url).status_code


@pytest.mark.django_db
def test_objects_of_another_workspace_are_404_everywhere(
    acme: Workspace, acme_client: Client, globex_ids: dict[str, int | str]
) -> None:
    api = key_client(api_key(acme))
    failures = []
    for route in workspace_routes():
        if not route.kwargs or set(route.kwargs) <= SHARED_KEYWORDS:
            continue
        url = route.url(globex_ids)
        for client_name, client in (("browser", acme_client), ("api key", api)):
            if route.is_api != (client_name == "api key") and client_name == "api key":
                continue
            for method in route.methods():
                status = _request(client, method, url)
                if status != 404:
                    failures.append(f"{client_name} {method.upper()} {url} -> {status}")
        if route.is_api:
            for method in route.methods():
                status = _request(acme_client, method, url)
                if status != 404:
                    failures.append(f"session {method.upper()} {url} -> {status}")
    assert not failures, "Another workspace's object was not a 404:\n" + "\n".join(failures)


@pytest.mark.django_db
def test_own_objects_are_reachable(acme: Workspace, acme_client: Client, acme_ids: dict[str, int | str]) -> None:
    """The other half: the same walk on acme's own ids answers, so the 404s above are earned."""
    api = key_client(api_key(acme))
    for route in workspace_routes():
        if route.kwargs and "get" in route.methods():
            client = api if route.is_api else acme_client
            assert client.get(route.url(acme_ids)).status_code == 200, route.path


@pytest.mark.django_db
def test_list_pages_show_nothing_of_another_workspace(
    acme: Workspace, acme_client: Client, globex_ids: dict[str, int | str]
) -> None:
    api = key_client(api_key(acme))
    for route in workspace_routes():
        if route.kwargs or "get" not in route.methods():
            continue
        for client in (api, acme_client) if route.is_api else (acme_client,):
            response = client.get("/" + route.path)
            assert response.status_code == 200, route.path
            assert MARKER not in response.content.decode(), f"globex data shown on /{route.path}"


@pytest.mark.django_db
def test_session_cannot_select_a_workspace_it_is_not_member_of(
    acme: Workspace, acme_client: Client, globex: Workspace
) -> None:
    acme_client.post("/workspaces/switch/", {"workspace_id": globex.pk})
    session = acme_client.session
    session["workspace_id"] = globex.pk  # even a forged session value is ignored
    session.save()
    response = acme_client.get("/")
    assert b"Acme" in response.content and b"Globex" not in response.content


@pytest.mark.django_db
def test_invitation_links_do_not_cross_workspaces(acme: Workspace, globex: Workspace) -> None:
    invitation = Invitation.objects.get(pk=_invitation(globex))
    user = member(acme, Role.OWNER, email=invitation.email)
    membership = services.invitation_accept(invitation=invitation, user=user)
    assert membership.workspace == globex
    assert logged_in(user).get("/").status_code == 200
