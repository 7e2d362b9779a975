"""Creates (once) the demo workspace "Demo Shop" and prints how to log in.

Re-running changes nothing but prints the same logins: the passwords and the demo API key are
kept in var/ so a restart shows what the first run showed.
"""

from __future__ import annotations

import importlib
import json
import secrets
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from esp import services
from esp.models import ApiKey, ApiScope, Membership, Role, User, Workspace

DEMO_SLUG = "demo-shop"
DEMO_APPS = ("audiences", "campaigns", "automations", "analytics")  # in layer order: each builds on the ones before
# The owner, whom a newcomer logs in as first, reads English; the viewer shows the Russian
# catalogue (each person's interface language is kept on their account).
DEMO_PEOPLE = [
    ("owner@demo.shop", Role.OWNER, "Olga", "Petrova", "en"),
    ("marketer@demo.shop", Role.MARKETER, "Maria", "Ivanova", "en"),
    ("viewer@demo.shop", Role.VIEWER, "Viktor", "Georgiev", "ru"),
]
LANGUAGE_NAMES = {"en": "English", "ru": "Russian"}


class Command(BaseCommand):
    help = "Create the demo workspace with an owner, a marketer, a viewer and an API key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default=settings.PUBLIC_BASE_URL)

    def handle(self, *args: Any, **options: Any) -> None:
        secrets_file = settings.VAR_DIR / "demo.json"
        saved = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
        with transaction.atomic():
            created = self._seed(saved)
            self._seed_apps(Workspace.objects.get(slug=DEMO_SLUG))
        secrets_file.parent.mkdir(exist_ok=True)
        secrets_file.write_text(json.dumps(created, indent=2))
        secrets_file.chmod(0o600)
        self._print(options["base_url"], created)

    def _seed(self, saved: dict[str, Any]) -> dict[str, Any]:
        password = saved.get("password") or secrets.token_urlsafe(9)
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        owner_email = DEMO_PEOPLE[0][0]
        if workspace is None:
            owner = User.objects.filter(email=owner_email).first() or User.objects.create_user(
                email=owner_email,
                password=password,
                first_name=DEMO_PEOPLE[0][2],
                last_name=DEMO_PEOPLE[0][3],
                language=DEMO_PEOPLE[0][4],
                is_staff=True,
                is_superuser=True,
            )
            workspace = services.workspace_create(name="Demo Shop", owner=owner, time_zone="Europe/Sofia")
            workspace.slug = DEMO_SLUG
            workspace.postal_address = "Demo Shop Ltd., 12 Vitosha Blvd, 1000 Sofia, Bulgaria"
            workspace.default_from_email = "hello@demo.shop"
            workspace.save()
        for email, role, first, last, language in DEMO_PEOPLE:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email=email, password=password, first_name=first, last_name=last, language=language
                )
            Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
        api_key = saved.get("api_key")
        if not api_key or not ApiKey.objects.filter(workspace=workspace, prefix=api_key.split("_")[1]).exists():
            api_key = services.api_key_create(
                workspace=workspace,
                name="Demo shop backend",
                scopes=list(ApiScope.values),
                created_by=None,
            ).secret
        # The shop's website sends events only: the simulated shop of `make run` uses this key.
        write_key = saved.get("write_key")
        if not write_key or not ApiKey.objects.filter(workspace=workspace, prefix=write_key.split("_")[1]).exists():
            write_key = services.api_key_create(
                workspace=workspace, name="Demo shop website (events)", scopes=[ApiScope.EVENTS_WRITE], created_by=None
            ).secret
        return {"password": password, "api_key": api_key, "write_key": write_key}

    def _seed_apps(self, workspace: Workspace) -> None:
        """Each app may ship `<app>/demo.py` with `seed(workspace)`; found by name, so this
        project package imports none of the apps above it (DESIGN.md layers)."""
        for app in apps.get_app_configs():
            if app.name in DEMO_APPS:
                module = importlib.import_module(f"{app.name}.demo")
                module.seed(workspace)

    def _print(self, base_url: str, created: dict[str, Any]) -> None:
        line = "=" * 72
        self.stdout.write(line)
        self.stdout.write(f"  Mini ESP is starting at {base_url}/")
        self.stdout.write("  Demo workspace: Demo Shop")
        for email, role, _first, _last, language in DEMO_PEOPLE:
            interface = LANGUAGE_NAMES.get(language, language)
            self.stdout.write(f"  {role:<9} login: {email:<22} password: {created['password']}  ({interface})")
        self.stdout.write(f"  API key (all scopes): {created['api_key']}")
        self.stdout.write(f"  API docs: {base_url}/api/docs/   Admin: {base_url}/admin/ (owner login)")
        self.stdout.write(line)
