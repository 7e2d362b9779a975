"""The starter templates a marketer copies into the workspace, and the sample data the editor
previews with when the workspace has no contact or event of its own.

Each starter is MJML built from campaigns.content.blocks, personalised with fallbacks
(`{{ contact.first_name|default:'there' }}`), and expects the event its series will pass
(`sample_event` names the built-in sample of that shape). The workspace's layout adds the
header and the footer with the unsubscribe link and the postal address."""

# ruff: noqa: E501 — MJML markup reads best one element per line, however long.
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from campaigns.content import blocks
from campaigns.content.blocks import MUTED, document
from esp.mail import public_static_url

NAME = "{{ contact.first_name|default:'there' }}"
SHOP = "{{ workspace.name }}"


@dataclass(frozen=True)
class Starter:
    key: str
    name: Promise | str  # lazy: shown in the active language; stored with str()
    description: Promise | str
    subject: str
    preheader: str
    mjml: str
    sample_event: str = ""
    # An order confirmation is mail the customer needs whatever their newsletter choices:
    # transactional, so an unsubscribe from marketing does not suppress it.
    message_class: str = "marketing"


@dataclass(frozen=True)
class SampleEvent:
    key: str
    label: Promise | str
    name: str  # the event's name in the Segment spec
    properties: dict[str, Any]


_SNEAKERS = {
    "product_id": "SKU-RUN-42",
    "sku": "SKU-RUN-42",
    "name": "Trail running shoes",
    "price": 89.9,
    "quantity": 1,
    "category": "Shoes",
    "url": "https://shop.example.com/p/trail-running-shoes",
    "image_url": public_static_url("img/products/shoes.svg"),
}
_SOCKS = {
    "product_id": "SKU-SOCK-3",
    "sku": "SKU-SOCK-3",
    "name": "Merino running socks (3 pairs)",
    "price": 24.5,
    "quantity": 2,
    "category": "Socks",
    "url": "https://shop.example.com/p/merino-socks",
    "image_url": public_static_url("img/products/socks.svg"),
}

SAMPLE_EVENTS: dict[str, SampleEvent] = {
    sample.key: sample
    for sample in (
        SampleEvent(
            "cart",
            _("Sample cart (Checkout Started)"),
            "Checkout Started",
            {
                "cart_id": "cart-1001",
                "products": [_SNEAKERS, _SOCKS],
                "value": 138.9,
                "currency": "EUR",
                "checkout_url": "https://shop.example.com/cart/cart-1001",
            },
        ),
        SampleEvent(
            "order",
            _("Sample order (Order Completed)"),
            "Order Completed",
            {
                "order_id": "100234",
                "products": [_SNEAKERS, _SOCKS],
                "total": 138.9,
                "shipping": 0,
                "currency": "EUR",
            },
        ),
        SampleEvent("product", _("Sample product view (Product Viewed)"), "Product Viewed", dict(_SNEAKERS)),
        SampleEvent("coupon", _("Sample coupon"), "Coupon Issued", {"coupon": "SAVE15", "discount": "15 %"}),
    )
}

SAMPLE_CONTACT: dict[str, Any] = {
    "id": None,
    "email": "alex@example.com",
    "first_name": "Alex",
    "last_name": "Sample",
    "full_name": "Alex Sample",
    "city": "Springfield",
    "country": "US",
    "tags": [],
    "facts": {"orders_count": 2, "revenue": 163.4, "products": ["SKU-RUN-42", "SKU-SOCK-3"]},
}

# Shown by the sample contact (who has no purchase facts in the database).
SAMPLE_RECOMMENDATIONS: list[dict[str, Any]] = [
    {
        "product_id": "SKU-CAP-1",
        "name": "Running cap",
        "price": 19.0,
        "url": "https://shop.example.com/p/running-cap",
        "image_url": public_static_url("img/products/cap.svg"),
    },
    {
        "product_id": "SKU-BOTTLE",
        "name": "Insulated bottle",
        "price": 29.0,
        "url": "https://shop.example.com/p/bottle",
        "image_url": public_static_url("img/products/bottle.svg"),
    },
    {
        "product_id": "SKU-VEST-2",
        "name": "Hydration vest",
        "price": 74.0,
        "url": "https://shop.example.com/p/vest",
        "image_url": public_static_url("img/products/vest.svg"),
    },
]


WELCOME = Starter(
    key="welcome",
    name=pgettext_lazy("starter template", "Welcome"),
    description=_("Greets a new subscriber, says what to expect and gives a first-order code."),
    subject=f"Welcome to {SHOP}, {NAME}!",
    preheader="Here is what to expect — and a little something for your first order.",
    mjml=document(
        blocks.hero(
            f"Welcome, {NAME}!",
            f"Thanks for joining {SHOP}. Every week or two we send new arrivals, tips from our team "
            "and offers that are only for subscribers. Never more than that.",
        )
        + "\n"
        + blocks.coupon("{{ event.coupon|default:'WELCOME10' }}", "10 % off your first order with the code")
        + "\n"
        + blocks.button("Start shopping", "{{ event.shop_url|default:'https://shop.example.com' }}")
    ),
)

ABANDONED_CART = Starter(
    key="abandoned_cart",
    name=pgettext_lazy("starter template", "Abandoned cart"),
    description=_("Reminds a shopper of the products left in the cart, with pictures and prices."),
    subject="{{ contact.first_name|default:'Hey' }}, your cart is waiting",
    preheader="{{ event.products.0.name|default:'Your picks' }} and more are still in your cart.",
    mjml=document(
        blocks.hero(
            "You left something behind",
            f"Hi {NAME}, the items in your cart are still waiting for you — but we can't hold them forever.",
        )
        + "\n"
        + blocks.PRODUCTS
        + "\n"
        + blocks.TOTALS
        + "\n"
        + blocks.button(
            "Back to my cart", "{{ event.checkout_url|default:event.url|default:'https://shop.example.com/cart' }}"
        )
        + "\n"
        + blocks.text(f'<span style="color:{MUTED};font-size:14px;">Questions? Just reply to this email.</span>')
    ),
    sample_event="cart",
)

BROWSE_ABANDONMENT = Starter(
    key="browse_abandonment",
    name=pgettext_lazy("starter template", "Browse abandonment"),
    description=_("Follows up on a product the contact looked at without buying."),
    subject="Still thinking about the {{ event.name|default:'item you viewed' }}?",
    preheader="It is still available — take another look.",
    mjml=document(
        f"""    <mj-section padding="32px 0 8px">
      <mj-column>
        <mj-text font-size="28px" line-height="34px" font-weight="bold">Still on your mind?</mj-text>
        <mj-text>Hi {NAME}, you were looking at this recently. Good news: it is still available.</mj-text>
      </mj-column>
    </mj-section>
    <mj-section padding="8px 24px 24px">
      <mj-column>
        {{% if event.image_url %}}<mj-image src="{{{{ event.image_url }}}}" alt="{{{{ event.name }}}}" href="{{{{ event.url|default:'#' }}}}" width="320px" border-radius="8px" />{{% endif %}}
        <mj-text align="center" font-size="20px" font-weight="bold">{{{{ event.name|default:'Your product' }}}}</mj-text>
        {{% if event.price %}}<mj-text align="center" color="{MUTED}">{{{{ event.price|floatformat:2 }}}} {{{{ event.currency|default:'' }}}}</mj-text>{{% endif %}}
        <mj-button href="{{{{ event.url|default:'https://shop.example.com' }}}}">Take another look</mj-button>
      </mj-column>
    </mj-section>
"""
        + blocks.RECOMMENDED
    ),
    sample_event="product",
)

ORDER_THANK_YOU = Starter(
    key="order_thank_you",
    name=pgettext_lazy("starter template", "Order thank-you with cross-sell"),
    description=_("Thanks the customer for the order, lists it, and suggests products bought together."),
    subject=f"Thank you for your order{{% if event.order_id %}} #{{{{ event.order_id }}}}{{% endif %}}, {NAME}!",
    preheader="Your order is confirmed. Here is what you bought.",
    mjml=document(
        blocks.hero(
            f"Thank you, {NAME}!",
            "Your order{% if event.order_id %} <strong>#{{ event.order_id }}</strong>{% endif %} is confirmed "
            "and on its way to our packing team. We will email you again when it ships.",
        )
        + "\n"
        + blocks.PRODUCTS
        + "\n"
        + blocks.TOTALS
        + "\n"
        + blocks.RECOMMENDED.replace("You might also like", "Goes well with your order")
    ),
    sample_event="order",
    message_class="transactional",
)

REPLENISHMENT = Starter(
    key="replenishment",
    name=pgettext_lazy("starter template", "Replenishment reminder"),
    description=_("Reminds a customer to restock what they bought, around when it runs out."),
    subject="Running low on {{ event.products.0.name|default:'your favourites' }}?",
    preheader="Restock in two clicks before you run out.",
    mjml=document(
        blocks.hero(
            "Time to restock?",
            f"Hi {NAME}, it has been a while since your last order"
            "{% if contact.facts.last_order_at %} ({{ contact.facts.last_order_at|date:'j F' }}){% endif %}. "
            "If you are running low, here it is again:",
        )
        + "\n"
        + blocks.PRODUCTS
        + "\n"
        + blocks.button("Order again", "{{ event.products.0.url|default:'https://shop.example.com' }}")
    ),
    sample_event="order",
)

WIN_BACK = Starter(
    key="win_back",
    name=pgettext_lazy("starter template", "Win-back with coupon"),
    description=_("Brings back a customer who has not ordered for a long time, with a coupon code."),
    subject=f"We miss you, {NAME} — here is 15 % off",
    preheader="A little welcome-back gift, valid for 14 days.",
    mjml=document(
        blocks.hero(
            "It has been a while!",
            f"Hi {NAME}, we have missed you at {SHOP}. A lot has changed since your last visit — "
            "come and have a look, with a little gift from us:",
        )
        + "\n"
        + blocks.coupon("{{ event.coupon|default:'COMEBACK15' }}", "15 % off your next order with the code")
        + "\n"
        + blocks.button("Shop the new arrivals", "{{ event.shop_url|default:'https://shop.example.com/new' }}")
        + "\n"
        + blocks.RECOMMENDED.replace("You might also like", "Picked for you")
    ),
    sample_event="coupon",
)

BIRTHDAY = Starter(
    key="birthday",
    name=pgettext_lazy("starter template", "Birthday"),
    description=_("Wishes a happy birthday with a gift code."),
    subject=f"Happy birthday, {NAME}! 🎂",
    preheader="A birthday gift from all of us inside.",
    mjml=document(
        f"""    <mj-section padding="40px 0 8px" background-color="#fdf2f8">
      <mj-column>
        <mj-text align="center" font-size="48px" line-height="56px">🎂</mj-text>
        <mj-text align="center" font-size="30px" line-height="36px" font-weight="bold">Happy birthday, {NAME}!</mj-text>
        <mj-text align="center">Everyone at {SHOP} wishes you a wonderful day. Treat yourself — it is on us:</mj-text>
      </mj-column>
    </mj-section>
"""
        + blocks.coupon("{{ event.coupon|default:'BIRTHDAY20' }}", "20 % off anything this week with the code")
        + "\n"
        + blocks.button("Pick your present", "{{ event.shop_url|default:'https://shop.example.com' }}")
    ),
    sample_event="coupon",
)

PROMO = Starter(
    key="promo",
    name=pgettext_lazy("starter template", "Promo announcement"),
    description=_("Announces a sale or a new collection to a list or segment."),
    subject="{{ contact.first_name|default:'Hey' }}, our spring sale starts now: up to 30 % off",
    preheader="Three days only. Your favourites, for less.",
    mjml=document(
        blocks.hero(
            "Spring sale: up to 30 % off",
            f"Hi {NAME}, for three days only our best sellers are up to 30 % off. "
            "No code needed — prices are already reduced.",
            "Shop the sale",
            "{{ event.sale_url|default:'https://shop.example.com/sale' }}",
            image=public_static_url("img/products/sale-banner.svg"),
        )
        + "\n"
        + blocks.RECOMMENDED.replace("You might also like", "On sale and picked for you")
        + "\n"
        + blocks.text(f'<span style="color:{MUTED};font-size:14px;">Offer valid while stocks last.</span>')
    ),
)

STARTERS: dict[str, Starter] = {
    starter.key: starter
    for starter in (
        WELCOME,
        ABANDONED_CART,
        BROWSE_ABANDONMENT,
        ORDER_THANK_YOU,
        REPLENISHMENT,
        WIN_BACK,
        BIRTHDAY,
        PROMO,
    )
}
