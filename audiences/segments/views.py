"""Browser pages of segments: the list, the builder (a rule tree edited in the browser with a
live count and preview of matching contacts), and a segment's page (count, refresh status,
members, enter/exit history). Viewers read; marketers write."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audiences.models import Segment
from audiences.segments import selectors, services
from audiences.segments.compiler import EMPTY_RULES, builder_schema, describe_rules, validate_rules
from audiences.segments.registry import RuleContext
from esp.api.errors import error_fields
from esp.input import parse_id
from esp.plurals import plural_forms
from esp.web import WorkspaceView

# The builder's words (static/js/segment_builder.js reads them from the page).
BUILDER_TEXT = {
    "all": gettext_lazy("All of these"),
    "any": gettext_lazy("Any of these"),
    "negate": gettext_lazy("Exclude contacts matching this group"),
    "add_condition": gettext_lazy("+ Condition"),
    "add_group": gettext_lazy("+ Group"),
    "remove": gettext_lazy("Remove"),
    "remove_group": gettext_lazy("Remove group"),
    "kind": gettext_lazy("Kind of condition"),
    "field": gettext_lazy("Field"),
    "operator": gettext_lazy("Operator"),
    "value": gettext_lazy("Value"),
    "values_hint": gettext_lazy("comma-separated"),
    "days": gettext_lazy("days"),
    "and": gettext_lazy("and"),
    "yes": gettext_lazy("yes"),
    "no": gettext_lazy("no"),
    "list_in": gettext_lazy("is on the list"),
    "list_not_in": gettext_lazy("is not on the list"),
    "status": gettext_lazy("Status"),
    "has": gettext_lazy("has a consent record"),
    "has_not": gettext_lazy("has no consent record"),
    "any_list": gettext_lazy("for any list"),
    "did": gettext_lazy("did"),
    "did_not": gettext_lazy("did not do"),
    "event_name": gettext_lazy("Event name"),
    "times": gettext_lazy("times"),
    "ever": gettext_lazy("ever"),
    "in_last_days": gettext_lazy("in the last"),
    "between": gettext_lazy("between"),
    "where": gettext_lazy("+ Where property…"),
    "property": gettext_lazy("Property"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "empty": gettext_lazy("No conditions: every contact matches. Add a condition."),
    "unknown_kind": gettext_lazy("This kind of condition is edited as JSON below."),
}


def builder_text() -> dict[str, Any]:
    """BUILDER_TEXT in the active language, with the nouns that follow a number in all their
    forms (the script picks the one for the number typed: 1 день, 3 дня, 5 дней)."""
    return {
        **{key: str(text) for key, text in BUILDER_TEXT.items()},
        "days_forms": plural_forms(lambda n: ngettext("day", "days", n)),
        "times_forms": plural_forms(lambda n: ngettext("time", "times", n)),
    }


PATH_PART = re.compile(r"conditions\[(\d+)\]")


def humane_path(path: str) -> str:
    """A path for people: "conditions[2].conditions[0].value" → "Condition 3.1 · value"."""
    numbers = [str(int(n) + 1) for n in PATH_PART.findall(path)]
    rest = PATH_PART.sub("", path).strip(".").replace("..", ".")
    if not numbers:
        return rest or _("Rules")
    label = _("Condition %(number)s") % {"number": ".".join(numbers)}
    return f"{label} · {rest}" if rest else label


def _rule_errors(error: ValidationError, prefix: str = "") -> dict[str, list[str]]:
    fields = error_fields(error)
    if "non_field_errors" in fields:  # about the rule tree as a whole
        return {"rules": fields["non_field_errors"]}
    return {
        path.removeprefix(prefix): messages
        for path, messages in fields.items()
        if not prefix or path.startswith(prefix) or path == "rules"
    }


class SegmentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def parsed_rules(self) -> Any:
        """The rules posted by the builder (a JSON textarea, also editable by hand)."""
        raw = self.data.get("rules") or ""
        if not raw.strip():
            return dict(EMPTY_RULES)
        try:
            return json.loads(raw)
        except ValueError:
            raise ValidationError({"rules": [_("The rules are not valid JSON.")]}) from None


class SegmentsView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        ctx = RuleContext(self.workspace)
        rows = []
        for segment in selectors.segments(workspace=self.workspace):
            try:
                summary = describe_rules(
                    validate_rules(workspace=self.workspace, rules=segment.rules, context=ctx), ctx
                )
            except ValidationError:
                summary = _("These rules need fixing.")
            rows.append({"segment": segment, "summary": summary, "pending": selectors.refresh_pending(segment)})
        return render(request, "audiences/segments.html", {"rows": rows})


class SegmentFormMixin(WorkspaceView):
    def _render(
        self,
        request: HttpRequest,
        form: SegmentForm,
        rules: Any,
        *,
        segment: Segment | None = None,
        rule_errors: dict[str, list[str]] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        ctx = RuleContext(self.workspace)
        return render(
            request,
            "audiences/segment_form.html",
            {
                "form": form,
                "segment": segment,
                # Rules that are not even JSON come back as typed, to be fixed in the textarea.
                "rules_json": rules if isinstance(rules, str) else json.dumps(rules),
                "schema": builder_schema(ctx),
                "builder_text": builder_text(),
                "rule_errors": [
                    {"path": path, "label": humane_path(path), "messages": messages}
                    for path, messages in (rule_errors or {}).items()
                ],
            },
            status=status,
        )

    def _save(self, request: HttpRequest, segment: Segment | None) -> HttpResponse:
        form = SegmentForm(request.POST)
        rules: Any = request.POST.get("rules", "")
        try:
            rules = form.parsed_rules()
            saved = services.segment_save(
                workspace=self.workspace,
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                rules=rules,
                segment_id=segment.pk if segment else None,
            )
        except ValidationError as error:
            fields = error_fields(error)
            if "name" in fields:
                form.add_error("name", fields["name"])
            form.is_valid()
            return self._render(
                request,
                form,
                rules,
                segment=segment,
                rule_errors=_rule_errors(error, prefix="rules."),
                status=400,
            )
        messages.success(request, _("Segment saved. Its members are being refreshed."))
        return redirect("segment", segment_id=saved.pk)


class SegmentCreateView(SegmentFormMixin):
    def get(self, request: HttpRequest) -> HttpResponse:
        rules = dict(EMPTY_RULES)
        return self._render(request, SegmentForm(), rules)

    def post(self, request: HttpRequest) -> HttpResponse:
        return self._save(request, None)


class SegmentEditView(SegmentFormMixin):
    def get(self, request: HttpRequest, segment_id: int) -> HttpResponse:
        segment = selectors.segment_get(workspace=self.workspace, segment_id=segment_id)
        form = SegmentForm(initial={"name": segment.name, "description": segment.description})
        rule_errors = None
        try:
            validate_rules(workspace=self.workspace, rules=segment.rules)
        except ValidationError as error:
            rule_errors = _rule_errors(error)
        return self._render(request, form, segment.rules, segment=segment, rule_errors=rule_errors)

    def post(self, request: HttpRequest, segment_id: int) -> HttpResponse:
        segment = selectors.segment_get(workspace=self.workspace, segment_id=segment_id)
        return self._save(request, segment)


class SegmentPreviewView(WorkspaceView):
    """The builder's live count and sample (an htmx fragment), or the rule's errors."""

    def post(self, request: HttpRequest) -> HttpResponse:
        context: dict[str, Any] = {}
        try:
            rules = SegmentForm(request.POST).parsed_rules()
            preview = selectors.segment_preview(workspace=self.workspace, rules=rules)
        except ValidationError as error:
            context["errors"] = [
                {"path": path, "label": humane_path(path), "messages": messages}
                for path, messages in _rule_errors(error).items()
            ]
        else:
            context.update(count=preview.count, contacts=preview.contacts)
        return render(request, "audiences/partials/segment_preview.html", context)


class SegmentView(WorkspaceView):
    def get(self, request: HttpRequest, segment_id: int) -> HttpResponse:
        segment = selectors.segment_get(workspace=self.workspace, segment_id=segment_id)
        status = {"segment": segment, "pending": selectors.refresh_pending(segment)}
        if request.headers.get("HX-Request") and request.GET.get("part") == "status":
            return render(request, "audiences/partials/segment_status.html", status)
        ctx = RuleContext(self.workspace)
        rule_errors: list[str] = []
        summary = ""
        try:
            summary = describe_rules(validate_rules(workspace=self.workspace, rules=segment.rules, context=ctx), ctx)
        except ValidationError as error:
            rule_errors = [f"{humane_path(path)}: {' '.join(m)}" for path, m in _rule_errors(error).items()]
        before = request.GET.get("before", "")
        members, next_before = selectors.segment_members_page(segment=segment, before=parse_id(before))
        return render(
            request,
            "audiences/segment.html",
            {
                **status,
                "summary": summary,
                "rule_errors": rule_errors,
                "members": members,
                "next_before": next_before,
                "history": selectors.segment_history(segment=segment),
            },
        )


class SegmentRefreshView(WorkspaceView):
    def post(self, request: HttpRequest, segment_id: int) -> HttpResponse:
        services.segment_refresh_request(workspace=self.workspace, segment_id=segment_id)
        messages.success(request, _("Refreshing the segment's members."))
        return redirect("segment", segment_id=segment_id)


class SegmentDeleteView(WorkspaceView):
    def post(self, request: HttpRequest, segment_id: int) -> HttpResponse:
        services.segment_delete(workspace=self.workspace, segment_id=segment_id)
        messages.success(request, _("Segment deleted."))
        return redirect("segments")
