"""Reusable MJML blocks: the default layout (header and footer), the e-commerce blocks
(the event's products, recommended products, a coupon) and small building blocks the editor
can insert. Each is MJML body content (sections) with Django template tags; the starters are
built from them.

The product blocks read products in the Segment e-commerce shape — `product_id`, `name`,
`price`, `quantity`, `url`, `image_url` — from `event.products` (cart, checkout, order) and
from `recommended_products` (computed from the contact's purchase facts, see
campaigns.content.selectors). Loops stand around whole mj-section elements (one row per
product) or around mj-column elements with an explicit width (three products per row), both of
which MJML keeps intact (see campaigns.content.mjml)."""

# ruff: noqa: E501 — MJML markup reads best one element per line, however long.
from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

ACCENT = "#4f46e5"
INK = "#1f2937"
MUTED = "#6b7280"
BACKDROP = "#f3f4f6"

HEAD = f"""  <mj-head>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="16px" line-height="24px" color="{INK}" padding="8px 24px" />
      <mj-button background-color="{ACCENT}" color="#ffffff" font-size="16px" font-weight="bold" border-radius="6px" inner-padding="14px 28px" padding="16px 24px" />
      <mj-section background-color="#ffffff" padding="8px 0" />
    </mj-attributes>
    <mj-style inline="inline">
      a {{ color: {ACCENT}; }}
      .price {{ color: {INK}; font-weight: bold; }}
    </mj-style>
  </mj-head>
"""


def document(body: str) -> str:
    """A whole template: the shared head and a body around `body` (sections)."""
    return f"""<mjml>
{HEAD}  <mj-body background-color="{BACKDROP}" width="600px">
{body.strip(chr(10))}
  </mj-body>
</mjml>
"""


DEFAULT_HEADER = f"""    <mj-section background-color="{BACKDROP}" padding="24px 0 8px">
      <mj-column>
        <mj-text align="center" font-size="22px" font-weight="bold" color="{INK}">{{{{ workspace.name }}}}</mj-text>
      </mj-column>
    </mj-section>"""

DEFAULT_FOOTER = f"""    <mj-section background-color="{BACKDROP}" padding="16px 0 32px">
      <mj-column>
        <mj-text align="center" font-size="12px" line-height="18px" color="{MUTED}">
          {{{{ labels.why_you_get_this }}}}<br />
          <a href="{{{{ preferences_url }}}}" style="color:{MUTED};">{{{{ labels.preferences }}}}</a> ·
          <a href="{{{{ unsubscribe_url }}}}" style="color:{MUTED};">{{{{ labels.unsubscribe }}}}</a>{{% if view_in_browser_url %}} ·
          <a href="{{{{ view_in_browser_url }}}}" style="color:{MUTED};">{{{{ labels.view_in_browser }}}}</a>{{% endif %}}<br />
          {{{{ workspace.postal_address|linebreaksbr }}}}
        </mj-text>
      </mj-column>
    </mj-section>"""


def hero(title: str, text: str, button: str = "", href: str = "", image: str = "") -> str:
    picture = f'\n        <mj-image src="{image}" alt="" padding="0 0 16px" border-radius="8px" />' if image else ""
    action = f'\n        <mj-button href="{href}">{button}</mj-button>' if button else ""
    return f"""    <mj-section padding="32px 0 16px">
      <mj-column>{picture}
        <mj-text font-size="28px" line-height="34px" font-weight="bold">{title}</mj-text>
        <mj-text>{text}</mj-text>{action}
      </mj-column>
    </mj-section>"""


def text(body: str) -> str:
    return f"""    <mj-section>
      <mj-column>
        <mj-text>{body}</mj-text>
      </mj-column>
    </mj-section>"""


def button(label: str, href: str) -> str:
    return f"""    <mj-section padding="0 0 16px">
      <mj-column>
        <mj-button href="{href}">{label}</mj-button>
      </mj-column>
    </mj-section>"""


def coupon(code: str, note: str) -> str:
    return f"""    <mj-section padding="8px 24px 16px">
      <mj-column border="2px dashed {ACCENT}" border-radius="8px" background-color="#eef2ff">
        <mj-text align="center" font-size="13px" color="{MUTED}" padding="16px 16px 0">{note}</mj-text>
        <mj-text align="center" font-size="26px" font-weight="bold" letter-spacing="3px" color="{ACCENT}" padding="4px 16px 16px">{code}</mj-text>
      </mj-column>
    </mj-section>"""


# One row per product of the event (cart, checkout, order): picture, name, quantity × price.
PRODUCTS = f"""    {{% for p in event.products %}}
    <mj-section padding="8px 24px">
      <mj-column width="30%" vertical-align="middle">
        {{% if p.image_url %}}<mj-image src="{{{{ p.image_url }}}}" alt="{{{{ p.name }}}}" href="{{{{ p.url|default:'#' }}}}" width="140px" border-radius="8px" padding="0" />{{% endif %}}
      </mj-column>
      <mj-column width="70%" vertical-align="middle">
        <mj-text font-size="17px" font-weight="bold" padding="4px 0 4px 16px"><a href="{{{{ p.url|default:'#' }}}}" style="color:{INK};text-decoration:none;">{{{{ p.name }}}}</a></mj-text>
        <mj-text color="{MUTED}" padding="0 0 0 16px">{{% if p.quantity and p.quantity != 1 %}}{{{{ p.quantity }}}} × {{% endif %}}{{% if p.price is not None %}}<span class="price">{{{{ p.price|floatformat:2 }}}} {{{{ event.currency|default:'' }}}}</span>{{% endif %}}</mj-text>
      </mj-column>
    </mj-section>
    {{% endfor %}}"""

# Order totals under the products (an order or a checkout).
TOTALS = """    {% if event.total or event.revenue or event.value %}
    <mj-section padding="0 24px 8px">
      <mj-column>
        <mj-divider border-color="#e5e7eb" border-width="1px" padding="8px 0" />
        <mj-text align="right" font-size="17px" padding="4px 0">{{ labels.total }} <span class="price">{{ event.total|default:event.revenue|default:event.value|floatformat:2 }} {{ event.currency|default:'' }}</span></mj-text>
      </mj-column>
    </mj-section>
    {% endif %}"""

# Up to three products often bought with what the contact bought (nothing when none).
RECOMMENDED = f"""    {{% if recommended_products %}}
    <mj-section padding="24px 16px 0">
      <mj-column>
        <mj-text font-size="20px" font-weight="bold" padding="0 8px">{{{{ recommended_title|default:labels.you_might_also_like }}}}</mj-text>
      </mj-column>
    </mj-section>
    <mj-section padding="8px 16px 24px">
      {{% for p in recommended_products|slice:':3' %}}
      <mj-column width="33%" padding="8px">
        {{% if p.image_url %}}<mj-image src="{{{{ p.image_url }}}}" alt="{{{{ p.name }}}}" href="{{{{ p.url|default:'#' }}}}" border-radius="8px" padding="0 0 8px" />{{% endif %}}
        <mj-text align="center" font-size="15px" font-weight="bold" padding="0">{{{{ p.name }}}}</mj-text>
        <mj-text align="center" color="{MUTED}" padding="2px 0 8px">{{% if p.price is not None %}}{{{{ p.price|floatformat:2 }}}}{{% endif %}}</mj-text>
        <mj-button href="{{{{ p.url|default:'#' }}}}" font-size="14px" inner-padding="8px 16px" padding="0">{{{{ labels.view }}}}</mj-button>
      </mj-column>
      {{% endfor %}}
    </mj-section>
    {{% endif %}}"""

DIVIDER = """    <mj-section padding="0 24px">
      <mj-column>
        <mj-divider border-color="#e5e7eb" border-width="1px" />
      </mj-column>
    </mj-section>"""


@dataclass(frozen=True)
class Block:
    key: str
    label: Promise | str
    mjml: str


# What the editor offers to insert at the cursor.
BLOCKS = (
    Block("hero", _("Heading, text and button"), hero("Big news", "Tell them what it is about.", "Shop now", "https://example.com")),
    Block("text", _("Text"), text("Hi {{ contact.first_name|default:'there' }}, …")),
    Block("button", _("Button"), button("Shop now", "https://example.com")),
    Block("products", _("Products of the event (cart, order)"), PRODUCTS),
    Block("totals", _("Order total"), TOTALS),
    Block("recommended", _("Recommended products"), RECOMMENDED),
    Block("coupon", _("Coupon code"), coupon("{{ event.coupon|default:'WELCOME10' }}", "Your code")),
    Block("divider", _("Divider"), DIVIDER),
)  # fmt: skip

BLANK = document(
    text("Hi {{ contact.first_name|default:'there' }},<br /><br />Write your email here.")
    + "\n"
    + button("Visit the shop", "https://example.com")
)
