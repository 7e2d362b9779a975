"""{% rule_builder_data form %}: the rule builder's schema and words for the current workspace,
as the json_script blocks static/js/segment_builder.js reads (rule-builder-schema,
rule-builder-text). Given forms, only when one of them has a rule tree field: the schema names
the workspace's lists, events and templates, so a page without a builder does not load it."""

from __future__ import annotations

from typing import Any

from django import forms, template
from django.utils.html import json_script
from django.utils.safestring import SafeString, mark_safe

from audiences.segments.compiler import builder_schema
from audiences.segments.registry import RuleContext
from audiences.segments.views import builder_text
from audiences.segments.widgets import RuleTreeTextarea

register = template.Library()


def _has_rule_tree(form: Any) -> bool:
    return isinstance(form, forms.BaseForm) and any(
        isinstance(field.widget, RuleTreeTextarea) for field in form.fields.values()
    )


@register.simple_tag(takes_context=True)
def rule_builder_data(context: template.Context, *forms_shown: Any) -> SafeString:
    workspace = context.get("current_workspace")
    if workspace is None or (forms_shown and not any(_has_rule_tree(form) for form in forms_shown)):
        return mark_safe("")
    schema = builder_schema(RuleContext(workspace))
    return json_script(schema, "rule-builder-schema") + json_script(builder_text(), "rule-builder-text")
