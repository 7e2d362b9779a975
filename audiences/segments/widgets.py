"""The form widget of a rule tree (a segment's rules, a series' flow filter, a condition step):
its JSON textarea, with the rule builder of static/js/segment_builder.js drawn above it and
the live count of matching contacts under it. Without JavaScript the textarea is all there is.

A page that shows one also puts the builder's schema and words in the page once
({% load rule_builder %}{% rule_builder_data form %}) and loads js/segment_builder.js."""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _


class RuleTreeTextarea(forms.Textarea):
    def __init__(self, attrs: dict[str, Any] | None = None, *, live_count: bool = True) -> None:
        super().__init__({"rows": 6, "spellcheck": "false", "class": "json", **(attrs or {})})
        self.live_count = live_count

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        textarea = super().render(name, value, attrs, renderer)
        textarea_id = (attrs or {}).get("id") or self.attrs.get("id") or f"id_{name}"
        preview = format_html(' data-preview-url="{}"', reverse("segment-preview")) if self.live_count else ""
        return format_html(
            '<div class="rule-builder" data-rule-builder="{}"{}></div>'
            '<details class="rules-json"><summary>{}</summary>{}</details>',
            textarea_id,
            preview,
            _("Rules as JSON"),
            textarea,
        )


def rule_tree_is_empty(rules: Any) -> bool:
    """A tree the builder posts before any condition is added ({"match": "all", "conditions":
    []}): it says nothing, so a form stores it as no rules at all."""
    return isinstance(rules, dict) and set(rules) <= {"match", "negate", "conditions"} and not rules.get("conditions")
