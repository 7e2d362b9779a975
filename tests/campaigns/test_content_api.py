"""The templates API: list, create (MJML or a starter), read, change; problems with field and
line in the project's error shape; scopes; another workspace's template is a 404."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.content import services
from campaigns.models import EmailTemplate
from esp.models import ApiScope, Workspace
from tests.conftest import key_client
from tests.factories import api_key

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_outbound")]  # a relay on loopback

MJML = """<mjml>
<mj-body>
<mj-section><mj-column>
<mj-text>Hi {{ contact.first_name|default:'there' }}</mj-text>
</mj-column></mj-section>
</mj-body>
</mjml>"""


def test_create_read_update(acme_api: APIClient) -> None:
    response = acme_api.post(
        "/api/v1/templates", {"name": "Hello", "subject": "Hi {{ contact.first_name }}", "mjml": MJML}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1 and body["mjml"] == MJML and body["use_layout"] is True
    assert "compiled_html" not in body
    template_id = body["id"]

    assert acme_api.get(f"/api/v1/templates/{template_id}").json()["name"] == "Hello"
    listing = acme_api.get("/api/v1/templates").json()
    assert [t["id"] for t in listing["results"]] == [template_id]

    patched = acme_api.patch(f"/api/v1/templates/{template_id}", {"subject": "Hey"}, format="json")
    assert patched.status_code == 200 and patched.json()["version"] == 2 and patched.json()["subject"] == "Hey"
    assert (
        acme_api.patch(f"/api/v1/templates/{template_id}", {"description": "d"}, format="json").json()["version"] == 2
    )


def test_create_from_a_starter(acme: Workspace, acme_api: APIClient) -> None:
    response = acme_api.post("/api/v1/templates", {"starter": "win_back", "name": "Come back"}, format="json")
    assert response.status_code == 201
    assert response.json()["starter"] == "win_back" and response.json()["name"] == "Come back"
    assert acme_api.post("/api/v1/templates", {"starter": "nope"}, format="json").status_code == 400


def test_problems_come_back_with_field_and_line(acme: Workspace, acme_api: APIClient) -> None:
    broken = MJML.replace("<mj-text>", "<mj-text>{% include 'x' %}", 1)
    response = acme_api.post("/api/v1/templates", {"name": "Bad", "subject": "{% if %}", "mjml": broken}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"]["mjml"] == [
        "line 4: {% include %} is not allowed in emails: only the built-in tags and filters work here."
    ]
    assert error["fields"]["subject"][0].startswith("line 1: ")
    assert {(p["field"], p["line"]) for p in error["problems"]} == {("mjml", 4), ("subject", 1)}
    assert not EmailTemplate.objects.filter(workspace=acme).exists()

    missing = acme_api.post("/api/v1/templates", {"name": "No body"}, format="json").json()["error"]
    assert set(missing["fields"]) == {"subject", "mjml"}

    template = services.template_create(workspace=acme, data={"name": "Good", "subject": "S", "mjml": MJML})
    response = acme_api.patch(
        f"/api/v1/templates/{template.pk}", {"mjml": MJML.replace("mj-column", "mj-colum")}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["problems"] == [
        {"field": "mjml", "line": 3, "message": "Unknown MJML element <mj-colum>."}
    ]
    duplicate = acme_api.post("/api/v1/templates", {"name": "good", "subject": "S", "mjml": MJML}, format="json")
    assert duplicate.status_code == 400 and "name" in duplicate.json()["error"]["fields"]


def test_scopes(acme: Workspace) -> None:
    template = services.template_create(workspace=acme, data={"name": "T", "subject": "S", "mjml": MJML})
    reader = key_client(api_key(acme, scopes=[ApiScope.CONTENT_READ]))
    assert reader.get(f"/api/v1/templates/{template.pk}").status_code == 200
    assert reader.patch(f"/api/v1/templates/{template.pk}", {"name": "X"}, format="json").status_code == 403
    assert (
        reader.post("/api/v1/templates", {"name": "X", "subject": "S", "mjml": MJML}, format="json").status_code == 403
    )
    contacts_only = key_client(api_key(acme, scopes=[ApiScope.CONTACTS_READ]))
    assert contacts_only.get("/api/v1/templates").status_code == 403


def test_another_workspaces_template_is_a_404(acme_api: APIClient, globex: Workspace) -> None:
    template = services.template_create(workspace=globex, data={"name": "Secret", "subject": "S", "mjml": MJML})
    assert acme_api.get(f"/api/v1/templates/{template.pk}").status_code == 404
    assert acme_api.patch(f"/api/v1/templates/{template.pk}", {"name": "Mine"}, format="json").status_code == 404
    assert acme_api.get("/api/v1/templates").json()["results"] == []
    template.refresh_from_db()
    assert template.name == "Secret"


def test_sender_and_provider_are_the_workspaces_own(acme: Workspace, globex: Workspace, acme_api: APIClient) -> None:
    from campaigns.providers.services import provider_create, sender_create

    ours = sender_create(workspace=acme, from_name="Orders", from_email="orders@acme.test")
    theirs = sender_create(workspace=globex, from_name="Globex", from_email="hi@globex.test")
    relay = provider_create(workspace=acme, name="Relay", kind="smtp", credentials={"host": "127.0.0.1"})
    template = services.template_create(workspace=acme, data={"name": "Receipt", "subject": "Hi", "mjml": MJML})
    url = f"/api/v1/templates/{template.pk}"

    patched = acme_api.patch(url, {"sender": ours.pk, "provider": relay.pk}, format="json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["sender"], patched.json()["provider"], patched.json()["version"]) == (ours.pk, relay.pk, 1)
    refused = acme_api.patch(url, {"sender": theirs.pk, "provider": 10**9}, format="json")
    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {"sender", "provider"}
    template.refresh_from_db()
    assert (template.sender_id, template.provider_id) == (ours.pk, relay.pk)  # nothing changed
    assert acme_api.patch(url, {"sender": None}, format="json").json()["sender"] is None
