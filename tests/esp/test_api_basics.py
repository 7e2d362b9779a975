"""The API's common ground: JSON errors with field paths, cursor pagination, the OpenAPI
document, unknown endpoints, and the health check."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import call_command
from django.test import Client
from rest_framework import serializers
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from esp.celery import app
from esp.models import Workspace
from tests.factories import OutboxMessageFactory


class _ItemSerializer(serializers.Serializer[dict[str, object]]):
    email = serializers.EmailField()


class _BatchSerializer(serializers.Serializer[dict[str, object]]):
    name = serializers.CharField()
    items = _ItemSerializer(many=True)


class _EchoView(APIView):
    authentication_classes = ()
    permission_classes = ()

    def post(self, request: object) -> None:
        _BatchSerializer(data=request.data).is_valid(raise_exception=True)  # type: ignore[attr-defined]


class _ServiceView(APIView):
    """Calls a "service" that raises Django's ValidationError, as services do."""

    authentication_classes = ()
    permission_classes = ()

    def post(self, request: object) -> None:
        if request.data.get("whole"):  # type: ignore[attr-defined]
            raise DjangoValidationError("The request as a whole is refused.")
        raise DjangoValidationError({"email": "Taken.", "attributes.size": ["Too big.", "Not a number."]})


def test_django_validation_errors_of_services_get_the_one_error_shape() -> None:
    response = _ServiceView.as_view()(APIRequestFactory().post("/", {}, format="json"))
    assert response.status_code == 400
    assert response.data == {
        "error": {
            "status": 400,
            "code": "invalid",
            "message": "Some fields are not valid.",
            "fields": {"email": ["Taken."], "attributes.size": ["Too big.", "Not a number."]},
        }
    }
    response = _ServiceView.as_view()(APIRequestFactory().post("/", {"whole": True}, format="json"))
    assert response.data["error"]["fields"] == {"non_field_errors": ["The request as a whole is refused."]}


def test_validation_errors_name_each_field_with_its_path() -> None:
    request = APIRequestFactory().post("/", {"items": [{"email": "ok@example.com"}, {"email": "bad"}]}, format="json")
    response = _EchoView.as_view()(request)
    assert response.status_code == 400
    error = response.data["error"]
    assert error["code"] == "invalid" and error["status"] == 400
    assert set(error["fields"]) == {"name", "items.1.email"}
    assert "valid email" in error["fields"]["items.1.email"][0]


@pytest.mark.django_db
def test_malformed_json_is_a_clear_400(acme_api: object) -> None:
    response = Client().post("/api/v1/me", data="{not json", content_type="application/json")
    assert response.status_code in {400, 401}
    assert "error" in response.json()


@pytest.mark.django_db
def test_unknown_endpoint_is_json_404() -> None:
    response = Client().get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_cursor_pagination_walks_every_row_once(acme: Workspace, acme_api: object) -> None:
    created = {OutboxMessageFactory(workspace=acme).pk for _ in range(7)}
    seen: list[int] = []
    url = "/api/v1/outbox/messages?limit=3"
    while url:
        page = acme_api.get(url).json()  # type: ignore[attr-defined]
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == sorted(created, reverse=True)


@pytest.mark.django_db
def test_openapi_document_is_valid_and_documents_auth() -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
    schema = Client().get("/api/schema/?format=json").json()
    assert "/api/v1/me" in schema["paths"]
    assert {"bearerAuth", "basicAuth"} <= set(schema["components"]["securitySchemes"])
    assert Client().get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}

    def broker_down(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("down")

    monkeypatch.setattr(app, "connection_for_write", broker_down)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error") and response.json()["database"] == "ok"
