"""The OpenAPI document and the code agree: errors documented for every operation, unknown
query parameters refused by name, bad limits and cursors are 400s, JSON types kept, and the
request shapes the document gives for templates and segment rules are the ones accepted."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from esp.models import Workspace


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import json

    path = tmp_path_factory.mktemp("schema") / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(path))
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def fields_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]  # type: ignore[no-any-return]


def test_every_operation_documents_its_error_answers(document: dict[str, Any]) -> None:
    assert "Error" in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "429"):
                response = operation["responses"].get(status)
                assert response is not None, (method, path, status)
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)


def test_limits_and_blank_choices_are_in_the_document(document: dict[str, Any]) -> None:
    limit = next(p for p in document["paths"]["/api/v1/contacts"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    gender = document["components"]["schemas"]["Contact"]["properties"]["gender"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in gender["oneOf"]
    rfm = document["components"]["schemas"]["CustomerFacts"]["properties"]["rfm_segment"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in rfm["oneOf"]
    assert document["components"]["schemas"]["RulesRequest"]["properties"]["rules"]["type"] == "object"
    create = document["paths"]["/api/v1/templates"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    variants = document["components"]["schemas"][create["$ref"].rsplit("/", 1)[1]]["oneOf"]
    required = [
        set(document["components"]["schemas"][variant["$ref"].rsplit("/", 1)[1]]["required"]) for variant in variants
    ]
    assert {"name", "subject", "mjml"} <= required[0] and required[1] == {"starter"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "name"),
    [("/api/v1/contacts?search=ana", "search"), ("/api/v1/events?anonymous_id=a-1", "anonymous_id")],
)
def test_unknown_query_parameters_are_refused_by_name(acme_api: APIClient, url: str, name: str) -> None:
    fields = fields_of(acme_api.get(url))
    assert list(fields) == [name]
    assert "Unknown query parameter" in fields[name][0]


@pytest.mark.django_db
def test_documented_query_parameters_still_work(acme_api: APIClient) -> None:
    assert acme_api.get("/api/v1/contacts?email=a@x.com&limit=5").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1001", "²", "9" * 5000])
def test_a_bad_limit_is_a_400(acme_api: APIClient, limit: str) -> None:
    assert "limit" in fields_of(acme_api.get(f"/api/v1/lists?limit={limit}"))


@pytest.mark.django_db
def test_an_invalid_cursor_is_a_400_not_a_404(acme_api: APIClient) -> None:
    assert "cursor" in fields_of(acme_api.get("/api/v1/lists?cursor=not-a-cursor"))


@pytest.mark.django_db
def test_json_types_are_kept(acme_api: APIClient) -> None:
    assert "name" in fields_of(acme_api.post("/api/v1/lists", {"name": 0}, format="json"))
    assert "double_opt_in" in fields_of(
        acme_api.post("/api/v1/lists", {"name": "News", "double_opt_in": 0}, format="json")
    )
    assert acme_api.post("/api/v1/lists", {"name": "News", "double_opt_in": False}, format="json").status_code == 201


@pytest.mark.django_db
def test_null_rules_are_a_field_error(acme_api: APIClient) -> None:
    assert "rules" in fields_of(acme_api.post("/api/v1/segments/count", {"rules": None}, format="json"))


@pytest.mark.django_db
def test_a_starter_copy_needs_no_name(acme: Workspace, acme_api: APIClient) -> None:
    from campaigns.content.starters import STARTERS

    response = acme_api.post("/api/v1/templates", {"starter": sorted(STARTERS)[0]}, format="json")
    assert response.status_code == 201, response.content
    missing = fields_of(acme_api.post("/api/v1/templates", {"name": "No body"}, format="json"))
    assert set(missing) == {"subject", "mjml"}
