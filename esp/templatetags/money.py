"""`{{ value|money }}`: an amount in the current workspace's currency, in the page's language."""

from __future__ import annotations

from typing import Any

from django import template

from esp.money import format_money

register = template.Library()


@register.filter(needs_autoescape=False)
def money(amount: Any, currency: str = "") -> str:
    return format_money(amount, currency or "EUR")


@register.simple_tag(takes_context=True)
def workspace_money(context: template.Context, amount: Any) -> str:
    """The amount in the workspace of the page (context processor's `current_workspace`)."""
    workspace = context.get("current_workspace")
    return format_money(amount, getattr(workspace, "currency", "") or "EUR")
