"""Browsers ask for /favicon.ico on every site: it must not be a 404."""

from __future__ import annotations

from django.test import Client


def test_favicon_ico_leads_to_the_icon() -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("/favicon.svg")
    icon = Client().get(response["Location"])
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content if icon.streaming else [icon.content])
