"""Runs the demo's simulated shop (audiences.demo_live) against the server of `make run`: a
visit every few seconds through the public tracking API, with the write key seed_demo kept in
var/demo.json. The launcher starts it unless DEMO_SHOP_SIMULATION=0."""

from __future__ import annotations

import json
import random
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audiences.demo_live import Customer, Shop, run
from audiences.models import Contact
from esp.models import Workspace

DEMO_SLUG = "demo-shop"


class Command(BaseCommand):
    help = "Send a simulated shop's events to the tracking API every few seconds (the demo of make run)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default=settings.PUBLIC_BASE_URL)
        parser.add_argument("--every", type=float, default=5.0, help="seconds between visits")

    def handle(self, *args: Any, **options: Any) -> None:
        secrets_file = settings.VAR_DIR / "demo.json"
        write_key = json.loads(secrets_file.read_text()).get("write_key") if secrets_file.exists() else None
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if not write_key or workspace is None:
            raise CommandError("No demo workspace or write key: run `manage.py seed_demo` first.")
        customers = [
            Customer(user_id=external_id, email=email, first_name=first_name, locale=locale or "en")
            for external_id, email, first_name, locale in Contact.objects.in_workspace(workspace)
            .filter(external_id__startswith="cust-")
            .exclude(email="")
            .order_by("external_id")
            .values_list("external_id", "email", "first_name", "locale")
        ]
        self.stdout.write(f"Demo shop: a visit every {options['every']:g} s to {options['base_url']}/v1/batch")
        shop = Shop(customers=customers, rng=random.Random())  # noqa: S311 — simulated traffic, not a secret
        run(shop, base_url=options["base_url"], write_key=write_key, every=options["every"])
