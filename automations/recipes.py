"""Recipes: a proven series in one click, then editable. A recipe copies the starter templates it
mails into the workspace and creates the series as a draft, for the marketer to check and
publish.

Each recipe builds its settings and steps from the templates it made (`Templates`), so the
step graph names real template ids and passes the same check as any series. A recipe that
starts from a segment (win-back, the promo's audience) makes that segment too, or takes the
workspace's segment of the same name. Replenishment and birthday start from a date: the
predicted next order, the birthday's anniversary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from audiences.models import Segment
from audiences.segments.services import segment_save
from automations.models import ReEntry, Series, SeriesKind
from automations.services import SeriesInput, series_create
from campaigns.content.services import template_copy_starter, template_update
from esp import clock
from esp.models import Workspace


class Templates:
    """The recipe's emails, copied from starters on first use (one copy per starter)."""

    def __init__(self, workspace: Workspace, prefix: str) -> None:
        self.workspace = workspace
        self.prefix = prefix
        self._made: dict[str, int] = {}

    def __call__(self, starter: str, name: str = "", *, edits: dict[str, str] | None = None) -> int:
        """The id of the copy of `starter` named `name`; `edits` replace words of its body (the
        same layout answering another question)."""
        key = f"{starter}:{name}"
        if key not in self._made:
            copied = template_copy_starter(
                workspace=self.workspace, starter_key=starter, name=f"{self.prefix} · {name}" if name else ""
            )
            if edits:
                mjml = copied.mjml
                for old, new in edits.items():
                    if old not in mjml:
                        raise ValueError(f"the starter {starter!r} has no {old!r} to replace")
                    mjml = mjml.replace(old, new)
                copied = template_update(workspace=self.workspace, template_id=copied.pk, data={"mjml": mjml})
            self._made[key] = copied.pk
        return self._made[key]

    def segment(self, name: str, description: str, rules: dict[str, Any]) -> int:
        """The id of the workspace's segment of this name, made with these rules if there is none
        (a second recipe, or the same one twice, shares it)."""
        found = Segment.objects.in_workspace(self.workspace).filter(name__iexact=name).first()
        if found is None:
            found = segment_save(workspace=self.workspace, name=name, description=description, rules=rules)
        return found.pk

    def next_morning(self, days: int, hour: int = 9) -> str:
        """`days` from now at `hour` o'clock in the workspace's time zone, as the promo trigger
        takes it."""
        zone = ZoneInfo(self.workspace.time_zone or "UTC")
        day = (clock.now().astimezone(zone) + timedelta(days=days)).date()
        return datetime.combine(day, time(hour), tzinfo=zone).isoformat()


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
                {"key": "wait-72h", "type": "wait", "amount": 2, "unit": "days", "next": "big-cart"},
                {
                    # Only a big cart is worth the margin of a coupon (Klaviyo's "trigger split").
                    "key": "big-cart",
                    "type": "condition",
                    "name": str(_("Cart worth 100 or more?")),
                    "entry_where": [{"property": "value", "operator": "gte", "value": 100}],
                    "yes": "coupon",
                    "no": "last-call",
                },
                {
                    "key": "coupon",
                    "type": "send",
                    "template": t("abandoned_cart", str(_("Cart coupon"))),
                    "subject": str(_("Your cart, with 10 % off")),
                },
                {
                    "key": "last-call",
                    "type": "send",
                    "template": t("abandoned_cart", str(_("Last call"))),
                    "subject": str(_("Your cart is still waiting")),
                },
            ]
        },
    )


def _browse_abandonment(t: Templates) -> SeriesInput:
    # The expensive products have their own, longer series (considered purchase).
    return SeriesInput(
        name=str(_("Browse abandonment")),
        kind=SeriesKind.TRIGGER,
        trigger={
            "type": "event",
            "event": "Product Viewed",
            "where": [{"property": "price", "operator": "lt", "value": CONSIDERED_PRICE}],
            "key": "product_id",
        },
        goal={"event": "Order Completed"},
        re_entry=ReEntry.PERIOD,
        re_entry_days=14,
        steps={
            "steps": [
                {
                    "key": "added",
                    "type": "wait_for_event",
                    "name": str(_("Added it to the cart within 2 hours?")),
                    "event": "Product Added",
                    "key_property": "product_id",
                    "timeout_amount": 2,
                    "timeout_unit": "hours",
                    "yes": None,
                    "no": "reminder",
                },
                {
                    "key": "reminder",
                    "type": "send",
                    "template": t("browse_abandonment", str(_("Take another look"))),
                },
            ]
        },
    )


def _post_purchase(t: Templates) -> SeriesInput:
    # Another order before the cross-sell is the goal: the customer came back by themselves.
    return SeriesInput(
        name=str(_("Thank you and cross-sell")),
        kind=SeriesKind.TRIGGER,
        trigger={"type": "event", "event": "Order Completed", "key": "order_id"},
        goal={"event": "Order Completed"},
        re_entry=ReEntry.ALWAYS,
        steps={
            "steps": [
                {
                    "key": "thanks",
                    "type": "send",
                    "template": t("order_thank_you", str(_("Thank you"))),
                    "next": "wait-7d",
                },
                {"key": "wait-7d", "type": "wait", "amount": 7, "unit": "days", "next": "cross-sell"},
                {
                    "key": "cross-sell",
                    "type": "send",
                    "template": t(
                        "promo",
                        str(_("Goes well with your order")),
                        edits={
                            "Spring sale: up to 30 % off": "Goes well with your order",
                            "for three days only our best sellers are up to 30 % off. "
                            "No code needed — prices are already reduced.": "your order should be with you by now. "
                            "We hope you love it — here is what other customers pair it with.",
                            "Shop the sale": "See what fits",
                        },
                    ),
                    "subject": str(_("{{ contact.first_name|default:'Hi' }}, these go well with your order")),
                },
            ]
        },
    )


def _replenishment(t: Templates) -> SeriesInput:
    # Five days before the customer's predicted next order (their last order plus their usual
    # interval, kept by the purchase facts); an order ends it, and the next prediction (keyed
    # by its date) enrolls again.
    return SeriesInput(
        name=str(_("Replenishment")),
        kind=SeriesKind.TRIGGER,
        trigger={"type": "date", "attribute": "predicted_next_order", "offset_days": -5, "time": "10:00"},
        goal={"event": "Order Completed"},
        re_entry=ReEntry.ALWAYS,
        steps={
            "steps": [
                {
                    "key": "reminder",
                    "type": "send",
                    "template": t("replenishment", str(_("Time to restock?"))),
                    "next": "wait-7d",
                },
                {"key": "wait-7d", "type": "wait", "amount": 7, "unit": "days", "next": "last"},
                {
                    "key": "last",
                    "type": "send",
                    "template": t("replenishment", str(_("Time to restock?"))),
                    "subject": str(_("Still enough of your favourites?")),
                },
            ]
        },
    )


LAPSED_RULES: dict[str, Any] = {
    "match": "all",
    "conditions": [
        {"kind": "facts", "field": "orders_count", "operator": "gte", "value": 1},
        {"kind": "event", "did": False, "name": "Order Completed", "period": "in_last_days", "days": 90},
    ],
}


def _win_back(t: Templates) -> SeriesInput:
    lapsed = t.segment(
        str(_("Lapsed customers: no order in 90 days")),
        str(_("Ordered before, not in the last 90 days: the win-back series starts when they enter.")),
        LAPSED_RULES,
    )
    return SeriesInput(
        name=str(_("Win-back")),
        kind=SeriesKind.TRIGGER,
        trigger={"type": "segment", "segment": lapsed, "on": "enter"},
        goal={"event": "Order Completed"},
        re_entry=ReEntry.PERIOD,
        re_entry_days=180,
        steps={
            "steps": [
                {
                    "key": "miss-you",
                    "type": "send",
                    "template": t("win_back", str(_("We miss you"))),
                    "next": "wait-7d",
                },
                {"key": "wait-7d", "type": "wait", "amount": 7, "unit": "days", "next": "reminder"},
                {
                    "key": "reminder",
                    "type": "send",
                    "template": t("win_back", str(_("We miss you"))),
                    "subject": str(_("Your 15 % code runs out in a week")),
                    "next": "wait-14d",
                },
                {"key": "wait-14d", "type": "wait", "amount": 14, "unit": "days", "next": "last"},
                {
                    "key": "last",
                    "type": "send",
                    "template": t("win_back", str(_("We miss you"))),
                    "subject": str(_("Should we keep writing to you, {{ contact.first_name|default:'friend' }}?")),
                },
            ]
        },
    )


def _birthday(t: Templates) -> SeriesInput:
    # Every year on the contact's birthday at 09:00 their time (keyed by the year: once a year).
    return SeriesInput(
        name=str(_("Birthday")),
        kind=SeriesKind.TRIGGER,
        trigger={"type": "date", "attribute": "birth_date", "offset_days": 0, "time": "09:00"},
        goal={"event": "Order Completed"},
        re_entry=ReEntry.ALWAYS,
        steps={
            "steps": [
                {
                    "key": "greeting",
                    "type": "send",
                    "template": t("birthday", str(_("Happy birthday"))),
                    "next": "wait-5d",
                },
                {"key": "wait-5d", "type": "wait", "amount": 5, "unit": "days", "next": "reminder"},
                {
                    "key": "reminder",
                    "type": "send",
                    "template": t("birthday", str(_("Happy birthday"))),
                    "subject": str(_("Your birthday gift is waiting (two days left)")),
                },
            ]
        },
    )


# From this price (in the shop's currency) a product is a considered purchase.
CONSIDERED_PRICE = 100


def _nurture_email(t: Templates, name: str, heading: str, text: str) -> int:
    return t(
        "browse_abandonment",
        name,
        edits={
            "Still on your mind?": heading,
            "you were looking at this recently. Good news: it is still available.": text,
        },
    )


def _considered_purchase(t: Templates) -> SeriesInput:
    """A week of answers to what holds back an expensive purchase: delivery, returns, what
    other buyers say, the warranty."""
    emails = [
        (
            "shipping",
            _nurture_email(
                t,
                str(_("Delivery")),
                "Free, fast delivery",
                "still deciding? Delivery of this one is free and takes 2–4 working days, tracked all the way.",
            ),
            str(_("Free delivery on the {{ event.name|default:'item you viewed' }}")),
        ),
        (
            "returns",
            _nurture_email(
                t,
                str(_("Returns")),
                "30 days to change your mind",
                "try it at home: if it is not right, send it back within 30 days and get every cent back.",
            ),
            str(_("Not sure yet? You have 30 days to return it")),
        ),
        (
            "reviews",
            _nurture_email(
                t,
                str(_("Reviews")),
                "What other customers say",
                "customers who bought this rate it 4.7 out of 5. Read their reviews before you decide.",
            ),
            str(_("What buyers say about the {{ event.name|default:'item you viewed' }}")),
        ),
        (
            "warranty",
            _nurture_email(
                t,
                str(_("Warranty")),
                "Two years of warranty",
                "every purchase comes with a two-year warranty and a repair service that answers within a day.",
            ),
            str(_("Covered for two years")),
        ),
    ]
    steps: list[dict[str, Any]] = [
        {"key": "wait-1d", "type": "wait", "amount": 1, "unit": "days", "next": emails[0][0]},
    ]
    for index, (key, template, subject) in enumerate(emails):
        following = emails[index + 1][0] if index + 1 < len(emails) else None
        wait_key = f"wait-{key}"
        steps.append({"key": key, "type": "send", "template": template, "subject": subject,
                      "next": wait_key if following else None})  # fmt: skip
        if following:
            steps.append({"key": wait_key, "type": "wait", "amount": 2, "unit": "days", "next": following})
    return SeriesInput(
        name=str(_("Considered purchase")),
        kind=SeriesKind.TRIGGER,
        trigger={
            "type": "event",
            "event": "Product Viewed",
            "where": [{"property": "price", "operator": "gte", "value": CONSIDERED_PRICE}],
            "key": "product_id",
        },
        goal={"event": "Order Completed"},
        re_entry=ReEntry.PERIOD,
        re_entry_days=60,
        steps={"steps": steps},
    )


def _promo(t: Templates) -> SeriesInput:
    buyers = t.segment(
        str(_("Customers of the last year")),
        str(_("Ordered at least once in the last 365 days: the promo series' audience.")),
        {
            "match": "all",
            "conditions": [
                {
                    "kind": "event",
                    "did": True,
                    "name": "Order Completed",
                    "count_operator": "gte",
                    "count": 1,
                    "period": "in_last_days",
                    "days": 365,
                }
            ],
        },
    )
    sale = {"Shop the sale": "Make a wish list"}
    return SeriesInput(
        name=str(_("Promo: teaser, launch, last chance")),
        kind=SeriesKind.PROMO,
        trigger={"type": "promo", "at": t.next_morning(7), "segment": buyers},
        goal={"event": "Order Completed"},
        re_entry=ReEntry.ONCE,
        steps={
            "steps": [
                {
                    "key": "teaser",
                    "type": "send",
                    "template": t(
                        "promo",
                        str(_("Teaser")),
                        edits={
                            "Spring sale: up to 30 % off": "Our sale starts in two days",
                            "for three days only our best sellers are up to 30 % off. No code needed — prices are "
                            "already reduced.": "in two days our best sellers go up to 30 % off, for three days. "
                            "You hear it first: make your wish list now.",
                            **sale,
                        },
                    ),
                    "subject": str(_("Psst, {{ contact.first_name|default:'friend' }}: our sale starts in two days")),
                    "next": "wait-launch",
                },
                {"key": "wait-launch", "type": "wait", "amount": 2, "unit": "days", "next": "launch"},
                {"key": "launch", "type": "send", "template": t("promo", str(_("Launch"))), "next": "wait-last"},
                {"key": "wait-last", "type": "wait", "amount": 2, "unit": "days", "next": "last-chance"},
                {
                    "key": "last-chance",
                    "type": "send",
                    "template": t(
                        "promo",
                        str(_("Last chance")),
                        edits={
                            "Spring sale: up to 30 % off": "Last chance: the sale ends tonight",
                            "for three days only our best sellers are up to 30 % off. No code needed — prices are "
                            "already reduced.": "these are the last hours of our sale: best sellers up to 30 % off "
                            "until midnight.",
                        },
                    ),
                    "subject": str(_("Last chance: the sale ends tonight")),
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
            _(
                "1 h, 24 h and 72 h after checkout; ends when that cart is ordered; "
                "the third brings a coupon to carts of 100 or more."
            ),
            SeriesKind.TRIGGER,
            _abandoned_cart,
        ),
        Recipe(
            "browse_abandonment",
            _("Browse abandonment"),
            _("Two hours after a product was viewed and not added to the cart: one reminder; for products under 100."),
            SeriesKind.TRIGGER,
            _browse_abandonment,
        ),
        Recipe(
            "post_purchase",
            _("Thank you and cross-sell"),
            _("Thanks at once for every order; a week later, what goes with it, unless they ordered again."),
            SeriesKind.TRIGGER,
            _post_purchase,
        ),
        Recipe(
            "replenishment",
            _("Replenishment"),
            _("25 days after an order, a reminder to restock, and another a week later; a new order starts again."),
            SeriesKind.TRIGGER,
            _replenishment,
        ),
        Recipe(
            "win_back",
            _("Win-back"),
            _("When a customer has not ordered for 90 days: three emails over three weeks, with a coupon."),
            SeriesKind.TRIGGER,
            _win_back,
        ),
        Recipe(
            "birthday",
            _("Birthday"),
            _("A gift code on the contact's birthday, and a reminder five days later."),
            SeriesKind.TRIGGER,
            _birthday,
        ),
        Recipe(
            "considered_purchase",
            _("Considered purchase"),
            _("For products from 100: four emails over a week on delivery, returns, reviews and warranty."),
            SeriesKind.TRIGGER,
            _considered_purchase,
        ),
        Recipe(
            "promo",
            _("Promo: teaser, launch, last chance"),
            _("A segment at a set time: a teaser, the launch two days later, the last chance two days after."),
            SeriesKind.PROMO,
            _promo,
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
