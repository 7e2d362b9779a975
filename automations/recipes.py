"""Recipes: a proven series in one click, then editable. A recipe copies the starter templates it
mails into the workspace and creates the series as a draft, for the marketer to check and
publish.

Each recipe builds its settings and steps from the templates it made (`Templates`), so the
step graph names real template ids and passes the same check as any series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from automations.models import ReEntry, Series, SeriesKind
from automations.services import SeriesInput, series_create
from campaigns.content.services import template_copy_starter
from esp.models import Workspace


class Templates:
    """The recipe's emails, copied from starters on first use (one copy per starter)."""

    def __init__(self, workspace: Workspace, prefix: str) -> None:
        self.workspace = workspace
        self.prefix = prefix
        self._made: dict[str, int] = {}

    def __call__(self, starter: str, name: str = "") -> int:
        key = f"{starter}:{name}"
        if key not in self._made:
            copied = template_copy_starter(
                workspace=self.workspace, starter_key=starter, name=f"{self.prefix} · {name}" if name else ""
            )
            self._made[key] = copied.pk
        return self._made[key]


@dataclass(frozen=True)
class Recipe:
    key: str
    name: Promise | str
    description: Promise | str
    kind: str
    build: Callable[[Templates], SeriesInput]


def _welcome(t: Templates) -> SeriesInput:
    return SeriesInput(
        name=str(_("Welcome series")),
        kind=SeriesKind.WELCOME,
        trigger={"type": "event", "event": "Signed Up"},
        goal={"event": "Order Completed"},
        re_entry=ReEntry.ONCE,
        steps={
            "steps": [
                {"key": "welcome", "type": "send", "template": t("welcome", str(_("Welcome"))), "next": "wait-2d"},
                {"key": "wait-2d", "type": "wait", "amount": 2, "unit": "days", "next": "ordered"},
                {
                    "key": "ordered",
                    "type": "condition",
                    "name": str(_("Has ordered since joining?")),
                    "events_since_entry": [{"event": "Order Completed"}],
                    "yes": None,
                    "no": "bestsellers",
                },
                {
                    "key": "bestsellers",
                    "type": "send",
                    "template": t("promo", str(_("Our bestsellers"))),
                    "next": "wait-5d",
                },
                {"key": "wait-5d", "type": "wait", "amount": 5, "unit": "days", "next": "story"},
                {"key": "story", "type": "send", "template": t("welcome", str(_("Our story"))), "next": "wait-7d"},
                {"key": "wait-7d", "type": "wait", "amount": 7, "unit": "days", "next": "coupon"},
                {
                    "key": "coupon",
                    "type": "send",
                    "template": t("promo", str(_("A welcome coupon"))),
                    "subject": str(_("10 % off your first order")),
                },
            ]
        },
    )


def _abandoned_cart(t: Templates) -> SeriesInput:
    return SeriesInput(
        name=str(_("Abandoned cart")),
        kind=SeriesKind.TRIGGER,
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
        goal={"event": "Order Completed", "key": "cart_id"},
        re_entry=ReEntry.ALWAYS,
        steps={
            "steps": [
                {
                    "key": "wait-1h",
                    "type": "wait_for_event",
                    "name": str(_("Ordered within the hour?")),
                    "event": "Order Completed",
                    "key_property": "cart_id",
                    "timeout_amount": 1,
                    "timeout_unit": "hours",
                    "yes": None,
                    "no": "reminder",
                },
                {
                    "key": "reminder",
                    "type": "send",
                    "template": t("abandoned_cart", str(_("Cart reminder"))),
                    "next": "wait-24h",
                },
                {"key": "wait-24h", "type": "wait", "amount": 23, "unit": "hours", "next": "second"},
                {
                    "key": "second",
                    "type": "send",
                    "template": t("abandoned_cart", str(_("Still thinking?"))),
                    "next": "wait-72h",
                },
                {"key": "wait-72h", "type": "wait", "amount": 2, "unit": "days", "next": "coupon"},
                {
                    "key": "coupon",
                    "type": "send",
                    "template": t("abandoned_cart", str(_("Cart coupon"))),
                    "subject": str(_("Your cart, with 10 % off")),
                },
            ]
        },
    )


RECIPES: dict[str, Recipe] = {
    recipe.key: recipe
    for recipe in (
        Recipe(
            "welcome",
            _("Welcome"),
            _("Four emails over two weeks; stops at the first order, coupon last."),
            SeriesKind.WELCOME,
            _welcome,
        ),
        Recipe(
            "abandoned_cart",
            _("Abandoned cart"),
            _("1 h, 24 h and 72 h after checkout; ends when that cart is ordered; coupon in the third."),
            SeriesKind.TRIGGER,
            _abandoned_cart,
        ),
    )
}


@transaction.atomic
def series_from_recipe(*, workspace: Workspace, recipe_key: str, **overrides: Any) -> Series:
    """The recipe's series, as a draft, with its templates copied into the workspace."""
    recipe = RECIPES[recipe_key]
    data = recipe.build(Templates(workspace, str(recipe.name)))
    if overrides:
        data = SeriesInput(**{**data.__dict__, **overrides})
    return series_create(workspace=workspace, data=data)
