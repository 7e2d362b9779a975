"""API key authentication: `Authorization: Bearer <key>`, or HTTP Basic with the key as the
user name and an empty password (what the Segment SDKs send as their write key)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from esp.api.throttling import failed_auth_throttle
from esp.models import ApiKey, Workspace
from esp.services import api_key_authenticate


@dataclass(frozen=True)
class ApiClient:
    """request.user of an API call: the key's workspace, not a person."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False

    @property
    def workspace(self) -> Workspace:
        return self.api_key.workspace


def key_from_header(header: bytes) -> str | None:
    scheme, _sep, credentials = header.decode("latin-1").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiClient, ApiKey] | None:
        header = get_authorization_header(request)
        if not header:
            return None
        secret = key_from_header(header)
        if secret is None:
            failed_auth_throttle(request)
            raise exceptions.AuthenticationFailed(
                _("Use 'Authorization: Bearer <API key>' or HTTP Basic with the key as user name.")
            )
        api_key = api_key_authenticate(secret)
        if api_key is None:
            failed_auth_throttle(request)
            raise exceptions.AuthenticationFailed(_("This API key is unknown or has been revoked."))
        return ApiClient(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "esp.api.auth.ApiKeyAuthentication"
    name = ["bearerAuth", "basicAuth"]

    def get_security_definition(self, auto_schema: object) -> list[dict[str, str]]:
        return [
            {"type": "http", "scheme": "bearer", "description": "An API key of the workspace."},
            {"type": "http", "scheme": "basic", "description": "The API key as user name, empty password."},
        ]
