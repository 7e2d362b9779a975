"""A segment's rule tree → one SQL query, through the ORM.

    group:     {"match": "all" | "any", "negate": false, "conditions": [condition-or-group, ...]}
    condition: {"kind": "<a registered kind>", ...}          (see conditions.py, registry.py)

`validate_rules` checks a tree against the whitelists (kinds, fields, operators) and returns it
normalised, or raises ValidationError naming the path of every problem
("conditions[2].operator": "'drop table' is not an operator for number fields; …").
`segment_queryset` compiles it to a QuerySet[Contact]: groups become AND / OR / NOT of Q objects,
conditions become lookups, Exists and IN subqueries — one statement when evaluated, never a
contact evaluated in Python. Every part is scoped to the workspace.

An empty group imposes nothing: the empty root matches every contact of the workspace.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import reduce
from operator import and_, or_
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences.models import Contact
from audiences.segments import conditions  # noqa: F401 — registers the built-in kinds
from audiences.segments.registry import CONDITION_KINDS, RuleContext
from audiences.segments.values import FALSE, TRUE, RuleErrors, at, operators_schema
from esp.models import Workspace

MAX_DEPTH = 5
MAX_CONDITIONS = 100
MAX_RULES_BYTES = 64 * 1024
MATCHES = ("all", "any")
EMPTY_RULES: dict[str, Any] = {"match": "all", "negate": False, "conditions": []}


def validate_rules(*, workspace: Workspace, rules: Any, context: RuleContext | None = None) -> dict[str, Any]:
    """The rule tree checked and normalised (the form stored in Segment.rules)."""
    ctx = context or RuleContext(workspace)
    errors = RuleErrors()
    if not isinstance(rules, dict):
        raise ValidationError({"rules": [_("Expected a group: an object with match and conditions.")]})
    if len(json.dumps(rules, default=str)) > MAX_RULES_BYTES:
        raise ValidationError({"rules": [_("The rules are too large (at most 64 KB).")]})
    counter = [0]
    cleaned = _clean_group(rules, ctx, "", errors, depth=1, counter=counter)
    if counter[0] > MAX_CONDITIONS:
        errors.add(
            "conditions",
            ngettext(
                "At most %(max)d condition in a segment.", "At most %(max)d conditions in a segment.", MAX_CONDITIONS
            )
            % {"max": MAX_CONDITIONS},
        )
    errors.raise_if_any()
    return cleaned


def segment_queryset(
    *, workspace: Workspace, rules: Any, context: RuleContext | None = None, now: dt.datetime | None = None
) -> QuerySet[Contact]:
    """The contacts of the workspace that match the rules, as one (lazy) query. `now` fixes
    the moment time-relative conditions are evaluated at (default: now)."""
    ctx = context or RuleContext(workspace, now=now)
    cleaned = validate_rules(workspace=workspace, rules=rules, context=ctx)
    return Contact.objects.filter(workspace_id=workspace.pk).filter(compile_group(cleaned, ctx))


def compile_group(group: dict[str, Any], ctx: RuleContext) -> Q:
    """A checked group as one Q. Every part is strictly true or false (see values.py), so NOT
    of a group is exactly its complement."""
    parts = [
        compile_group(node, ctx) if _is_group(node) else CONDITION_KINDS[node["kind"]].compile(node, ctx)
        for node in group["conditions"]
    ]
    if not parts:
        combined = TRUE
    else:
        combined = reduce(and_ if group["match"] == "all" else or_, parts)
    if group["negate"]:
        return ~combined if parts else FALSE
    return combined


def rules_time_relative(rules: dict[str, Any]) -> bool:
    """Whether a checked tree's result can change with the clock alone (beat refreshes it)."""
    for node in rules.get("conditions", []):
        if _is_group(node):
            if rules_time_relative(node):
                return True
        elif CONDITION_KINDS[node["kind"]].time_relative(node):
            return True
    return False


def describe_rules(rules: dict[str, Any], ctx: RuleContext) -> str:
    """A checked tree in words, for the pages: "Country is DE and (…) and not (…)"."""
    return _describe_group(rules, ctx, top=True) or _("every contact")


def builder_schema(ctx: RuleContext) -> dict[str, Any]:
    """What the builder in the browser offers: each kind with its fields and choices, and the
    operators of each value type."""
    return {
        "kinds": [
            {"kind": name, "label": str(kind.label), **kind.schema(ctx)} for name, kind in CONDITION_KINDS.items()
        ],
        "operators": operators_schema(),
    }


# --- internals ------------------------------------------------------------------------------


def _is_group(node: dict[str, Any]) -> bool:
    return "kind" not in node


def _clean_group(
    group: dict[str, Any], ctx: RuleContext, path: str, errors: RuleErrors, *, depth: int, counter: list[int]
) -> dict[str, Any]:
    for key in sorted(set(group) - {"match", "negate", "conditions"}):
        errors.add(at(path, key), _("Unknown key %(key)r in a group.") % {"key": key})
    match = group.get("match", "all")
    if match not in MATCHES:
        errors.add(at(path, "match"), _("%(match)r is not all / any.") % {"match": match})
    negate = group.get("negate", False)
    if not isinstance(negate, bool):
        errors.add(at(path, "negate"), _("Expected true or false."))
    nodes = group.get("conditions", [])
    if not isinstance(nodes, list):
        errors.add(at(path, "conditions"), _("Expected a list of conditions."))
        nodes = []
    if depth > MAX_DEPTH:
        errors.add(path or "conditions", _("Groups nest at most %(max)d deep.") % {"max": MAX_DEPTH})
        nodes = []
    cleaned_nodes = []
    for index, node in enumerate(nodes):
        node_path = at(at(path, "conditions"), index)
        if not isinstance(node, dict):
            errors.add(node_path, _("Expected a condition (with a kind) or a group (with conditions)."))
            continue
        if _is_group(node):
            if "conditions" not in node:
                errors.add(node_path, _("Expected a condition (with a kind) or a group (with conditions)."))
                continue
            cleaned_nodes.append(_clean_group(node, ctx, node_path, errors, depth=depth + 1, counter=counter))
            continue
        counter[0] += 1
        kind = CONDITION_KINDS.get(node["kind"]) if isinstance(node["kind"], str) else None
        if kind is None:
            errors.add(
                at(node_path, "kind"),
                _("%(kind)r is not a kind of condition; use one of: %(kinds)s.")
                % {"kind": node["kind"], "kinds": ", ".join(CONDITION_KINDS)},
            )
            continue
        cleaned_nodes.append(kind.clean(node, ctx, node_path, errors))
    return {"match": match, "negate": negate is True, "conditions": cleaned_nodes}


def _describe_group(group: dict[str, Any], ctx: RuleContext, *, top: bool = False) -> str:
    parts = []
    for node in group["conditions"]:
        if _is_group(node):
            text = _describe_group(node, ctx)
            if text:
                parts.append(text)
        else:
            parts.append(CONDITION_KINDS[node["kind"]].describe(node, ctx))
    # Outside the f-strings, so that makemessages sees them.
    and_word, or_word, not_word = _("and"), _("or"), _("not")
    joiner = f" {and_word} " if group["match"] == "all" else f" {or_word} "
    text = joiner.join(parts)
    if not text:
        return ""
    if group["negate"]:
        return f"{not_word} ({text})"
    return text if top or len(parts) == 1 else f"({text})"
