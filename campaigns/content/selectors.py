"""Reads of email content, always scoped to a workspace: templates, the layout, products
bought together, and the sample contacts and events the editor previews with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from audiences.models import Contact, Event
from campaigns.content import blocks
from campaigns.models import EmailTemplate, Layout
from esp.input import parse_id
from esp.models import Workspace

SAMPLE_CONTACTS = 50
SAMPLE_EVENTS = 20
RECOMMENDATIONS = 4
# Events whose properties describe products: a product itself (viewed, added) or a list of
# them under "products" (cart, checkout, order).
PRODUCT_EVENTS = ("Order Completed", "Checkout Started", "Cart Viewed", "Product Viewed", "Product Added")
# How many recent buyers of a recommended product are asked for its name, price and picture.
_DETAIL_BUYERS = 20
_DETAIL_EVENTS = 10


def templates(*, workspace: Workspace) -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.in_workspace(workspace).defer("compiled_html")


def template_get(*, workspace: Workspace, template_id: int) -> EmailTemplate:
    """The workspace's template; another workspace's id is a 404."""
    return get_object_or_404(EmailTemplate.objects.in_workspace(workspace), pk=template_id)


@dataclass(frozen=True)
class LayoutParts:
    header: str
    footer: str
    version: int  # 0: the built-in default, never saved


DEFAULT_LAYOUT = LayoutParts(header=blocks.DEFAULT_HEADER, footer=blocks.DEFAULT_FOOTER, version=0)


def layout_of(*, workspace: Workspace) -> LayoutParts:
    layout = Layout.objects.in_workspace(workspace).first()
    if layout is None:
        return DEFAULT_LAYOUT
    return LayoutParts(header=layout.header_mjml, footer=layout.footer_mjml, version=layout.version)


# One statement: the contact's products (from their purchase facts), the products other
# customers bought together with any of them, ranked by how many such customers bought each,
# and for each of the top few its name, price, link and picture from the most recent event of
# a recent buyer that describes it. Both lookups of facts by product are array containment
# (`&&`, `@>`), which the GIN index on facts.products answers (`= ANY (products)` could not
# use it and read every facts row of the workspace: 0.4 s a recipient at 300,000 customers).
_RECOMMENDATIONS_SQL = f"""
WITH mine AS (
    SELECT products FROM audiences_customerfacts
    WHERE workspace_id = %(workspace)s AND contact_id = %(contact)s
),
recommended AS (
    SELECT p AS product_id, COUNT(*) AS together
    FROM audiences_customerfacts f
    CROSS JOIN mine
    CROSS JOIN LATERAL unnest(f.products) AS p
    WHERE f.workspace_id = %(workspace)s
      AND f.contact_id <> %(contact)s
      AND f.products && mine.products
      AND NOT (p = ANY (mine.products))
    GROUP BY p
    ORDER BY together DESC, p
    LIMIT %(limit)s
)
SELECT r.product_id, r.together, d.item
FROM recommended r
LEFT JOIN LATERAL (
    SELECT x.item
    FROM (
        SELECT b.contact_id FROM audiences_customerfacts b
        WHERE b.workspace_id = %(workspace)s AND b.products @> ARRAY[r.product_id]
        ORDER BY b.last_order_at DESC NULLS LAST
        LIMIT {_DETAIL_BUYERS}
    ) buyer
    CROSS JOIN LATERAL (
        SELECT e.properties, e.occurred_at FROM audiences_event e
        WHERE e.contact_id = buyer.contact_id AND e.name = ANY (%(events)s)
        ORDER BY e.occurred_at DESC
        LIMIT {_DETAIL_EVENTS}
    ) ev
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(ev.properties -> 'products') = 'array' THEN ev.properties -> 'products'
             ELSE jsonb_build_array(ev.properties) END
    ) AS x(item)
    WHERE jsonb_typeof(x.item) = 'object'
      AND COALESCE(NULLIF(btrim(x.item ->> 'product_id'), ''), NULLIF(btrim(x.item ->> 'sku'), '')) = r.product_id
    ORDER BY ev.occurred_at DESC
    LIMIT 1
) d ON true
ORDER BY r.together DESC, r.product_id
"""  # noqa: S608 — constants only; values are parameters


def product_dict(item: Any, product_id: str = "") -> dict[str, Any]:
    """One product as templates see it (Segment e-commerce spec names), from an event's
    product, whatever optional keys it has."""
    item = item if isinstance(item, dict) else {}
    pid = str(item.get("product_id") or item.get("sku") or item.get("id") or product_id)
    product = dict(item)
    product["product_id"] = pid
    product.setdefault("name", pid)
    product.setdefault("url", "")
    product["image_url"] = item.get("image_url") or item.get("image") or ""
    product.setdefault("price", None)
    product.setdefault("quantity", 1)
    return product


def recommended_products(
    *, workspace_id: int, contact_id: int | None, limit: int = RECOMMENDATIONS
) -> list[dict[str, Any]]:
    """Products often bought together with the contact's: [{product_id, name, price, url,
    image_url, together}], best first; empty for a contact who never bought anything."""
    if not contact_id:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _RECOMMENDATIONS_SQL,
            {"workspace": workspace_id, "contact": contact_id, "limit": limit, "events": list(PRODUCT_EVENTS)},
        )
        rows = cursor.fetchall()
    products = []
    for product_id, together, item in rows:
        # Django hands jsonb from a raw cursor over as text.
        product = product_dict(json.loads(item) if isinstance(item, str) else item, product_id)
        product["product_id"] = product_id
        product["together"] = together
        product.pop("quantity", None)
        products.append(product)
    return products


def sample_contacts(*, workspace: Workspace) -> list[Contact]:
    """The newest contacts, for the preview's dropdown (keyset order, never a COUNT)."""
    return list(
        Contact.objects.in_workspace(workspace)
        .order_by("-id")
        .only("id", "email", "first_name", "last_name")[:SAMPLE_CONTACTS]
    )


def sample_contact(*, workspace: Workspace, contact_id: int | None) -> Contact | None:
    if not contact_id:
        return None
    return Contact.objects.in_workspace(workspace).select_related("facts").filter(pk=contact_id).first()


def sample_events(*, workspace: Workspace, contact: Contact | None) -> list[Event]:
    """The contact's recent track events (newest first) to preview an email with."""
    if contact is None:
        return []
    return list(
        Event.objects.in_workspace(workspace)
        .filter(contact=contact, type="track")
        .order_by("-occurred_at")
        .only("id", "name", "occurred_at", "properties")[:SAMPLE_EVENTS]
    )


def sample_event(*, workspace: Workspace, contact: Contact | None, key: str) -> dict[str, Any]:
    """The event properties chosen in the preview: "sample:<name>" (built in) or
    "event:<id>" (one of the sample contact's own events)."""
    from campaigns.content.starters import SAMPLE_EVENTS as BUILT_IN

    if key.startswith("sample:"):
        sample = BUILT_IN.get(key.removeprefix("sample:"))
        return dict(sample.properties) if sample else {}
    if key.startswith("event:") and contact is not None and parse_id(key[6:]) is not None:
        event = Event.objects.in_workspace(workspace).filter(contact=contact, pk=int(key[6:])).first()
        if event is not None and isinstance(event.properties, dict):
            return dict(event.properties)
    return {}
