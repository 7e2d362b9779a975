"""`{{ value|money:current_workspace.currency }}`: an amount in a currency, in the page's language."""

from __future__ import annotations

from typing import Any

from django import template

from esp.money import format_money

register = template.Library()


@register.filter(needs_autoescape=False)
def money(amount: Any, currency: str = "") -> str:
    return format_money(amount, currency or "EUR")
