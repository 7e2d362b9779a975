"""The context is plain data (DESIGN rule 7): `email_context` builds it from a contact snapshot
(`contact_as_dict`), the event's properties and the message's links; the recipient's language
and the labels in it."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from audiences.models import Contact
from campaigns.content import selectors
from campaigns.content.sandbox import Lazy
from esp.models import Workspace

CONTACT_FIELDS = (
    "email", "external_id", "first_name", "last_name", "gender", "phone", "city", "country",
    "time_zone", "locale",
)  # fmt: skip
FACT_FIELDS = (
    "orders_count", "revenue", "average_order_value", "refunds_count", "refunded", "first_order_at",
    "last_order_at", "products", "categories", "median_days_between_orders", "predicted_next_order_at",
    "rfm_segment", "lifecycle_stage",
)  # fmt: skip
_DATE_FIELDS = ("birth_date",)
_DATETIME_FIELDS = ("created_at",)
_FACT_DATETIMES = ("first_order_at", "last_order_at", "predicted_next_order_at")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


def contact_as_dict(contact: Contact) -> dict[str, Any]:
    """A JSON-safe snapshot of the contact as templates see it: standard fields, custom fields
    by key (a standard field wins a clash), tags, and `facts` (purchase facts; {} for a
    prospect). Load contacts with select_related("facts") to spare a query each."""
    data: dict[str, Any] = {"id": contact.pk}
    for name in CONTACT_FIELDS:
        data[name] = getattr(contact, name)
    data["full_name"] = contact.full_name
    data["birth_date"] = _json_value(contact.birth_date)
    data["created_at"] = _json_value(contact.created_at)
    data["tags"] = list(contact.tags or [])
    attributes = contact.attributes if isinstance(contact.attributes, dict) else {}
    for key, value in attributes.items():
        data.setdefault(str(key), _json_value(value))
    try:
        facts = contact.facts
    except ObjectDoesNotExist:
        facts = None
    data["facts"] = {name: _json_value(getattr(facts, name)) for name in FACT_FIELDS} if facts is not None else {}
    return data


def _revive(data: dict[str, Any], dates: tuple[str, ...], datetimes: tuple[str, ...]) -> dict[str, Any]:
    """ISO strings of a snapshot back to dates, so that |date and |timesince work on them."""
    revived = dict(data)
    for name in dates:
        value = revived.get(name)
        if isinstance(value, str):
            revived[name] = parse_date(value) or value
    for name in datetimes:
        value = revived.get(name)
        if isinstance(value, str):
            try:
                revived[name] = parse_datetime(value) or value
            except ValueError:
                pass
    return revived


def _event_dict(event: dict[str, Any]) -> dict[str, Any]:
    data = dict(event) if isinstance(event, dict) else {}
    products = data.get("products")
    if isinstance(products, list):
        data["products"] = [selectors.product_dict(item) for item in products if isinstance(item, dict)]
    return data


def email_language(*, workspace: Workspace, contact: dict[str, Any]) -> str:
    """The language of an email's built-in texts: the contact's (the language of their locale,
    "ru-RU" or "ru"), when the service speaks it, else the workspace's."""
    known = {code for code, _name in settings.LANGUAGES}
    spoken = str(contact.get("locale") or "").replace("_", "-").split("-")[0].lower()
    if spoken in known:
        return spoken
    return workspace.language if workspace.language in known else settings.LANGUAGE_CODE


@lru_cache(maxsize=256)
def email_labels(language: str, workspace_name: str) -> dict[str, str]:
    """The built-in texts of the default footer and the blocks (`labels.unsubscribe`, …), in
    `language`: a plain dict the sandbox renders like any other data."""
    with translation.override(language):
        return {
            "why_you_get_this": _("You receive this email because you are a customer or subscriber of %(shop)s.")
            % {"shop": workspace_name},
            "preferences": _("Email preferences"),
            "unsubscribe": pgettext("the link in an email's footer", "Unsubscribe"),
            "view_in_browser": _("View in browser"),
            "total": _("Total:"),
            "you_might_also_like": _("You might also like"),
            "view": pgettext("a product's button in an email", "View"),
        }


def email_context(
    *, workspace: Workspace, contact: dict[str, Any], event: dict[str, Any], urls: dict[str, str]
) -> dict[str, Any]:
    """The plain-data context of one recipient's email."""
    labels = email_labels(email_language(workspace=workspace, contact=contact or {}), workspace.name)
    contact_data = _revive(contact or {}, _DATE_FIELDS, _DATETIME_FIELDS)
    facts = contact_data.get("facts")
    contact_data["facts"] = _revive(facts, (), _FACT_DATETIMES) if isinstance(facts, dict) else {}
    contact_id = contact_data.get("id")
    workspace_id = workspace.pk
    return {
        "contact": contact_data,
        "event": _event_dict(event),
        "workspace": {"name": workspace.name, "postal_address": workspace.postal_address},
        "unsubscribe_url": urls.get("unsubscribe_url", ""),
        "preferences_url": urls.get("preferences_url", ""),
        "view_in_browser_url": urls.get("view_in_browser_url", ""),
        "labels": labels,
        # Only queried when the template shows recommendations.
        "recommended_products": Lazy(
            lambda: selectors.recommended_products(
                workspace_id=workspace_id, contact_id=contact_id if isinstance(contact_id, int) else None
            )
        ),
    }
