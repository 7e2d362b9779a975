"""The project package: settings, Celery app, URLs, tenancy (workspaces, members, API keys)."""

from esp.celery import app as celery_app

__all__ = ["celery_app"]
