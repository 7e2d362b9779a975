"""The form widget of event property filters (a trigger's, a goal's, a wait's `where`): its JSON
textarea with rows of property / comparison / value drawn above it by
static/js/property_filters.js, which writes every change back to the textarea. Without
JavaScript the textarea is all there is; the services check what it holds either way."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from audiences.segments.event_conditions import NUMERIC_PROPERTY_OPERATORS, PROPERTY_OPERATORS
from audiences.segments.operators import Op, operator_label
from audiences.segments.values import ValueType


def _words() -> dict[str, Any]:
    return {
        "operators": [
            {
                "value": op,
                "label": operator_label(ValueType.NUMBER if op in NUMERIC_PROPERTY_OPERATORS else ValueType.TEXT, op),
            }
            for op in PROPERTY_OPERATORS
        ],
        "numeric": list(NUMERIC_PROPERTY_OPERATORS),
        "lists": [Op.IN, Op.NOT_IN],
        "none": [Op.IS_SET, Op.NOT_SET],
        "between": Op.BETWEEN,
        "property": _("Property"),
        "operator": _("Comparison"),
        "value": _("Value"),
        "add": _("Add a filter"),
        "remove": _("Remove this filter"),
    }


class PropertyFiltersTextarea(forms.Textarea):
    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 3, "spellcheck": "false", "class": "json", **(attrs or {})})

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        textarea = super().render(name, value, attrs, renderer)
        textarea_id = (attrs or {}).get("id") or self.attrs.get("id") or f"id_{name}"
        return format_html(
            '<div class="property-filters" data-filters-for="{}" data-words="{}"></div>'
            '<details class="rules-json"><summary>{}</summary>{}</details>',
            textarea_id,
            json.dumps(_words(), ensure_ascii=False),
            _("Filters as JSON"),
            textarea,
        )
