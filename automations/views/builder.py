"""The series builder: the draft drawn as the step tree, a "+" on every edge, each step's
actions (edit, move up / down, duplicate, delete) and a side panel editing the selected step.

One page, one URL: a GET draws it (`?step=<key>` opens a step's panel, `?edge=<edge>` the
"add a step here" chooser); every change is a POST of one edit (`op`), applied by
automations.editing to the draft as it is in the database, then the page is drawn again. htmx
swaps only the builder's part (`hx-select="#builder"`), so an edit is one round trip; without
JavaScript the same forms post and redirect.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences import selectors as audience_selectors
from audiences.events.selectors import event_names
from audiences.models import CustomField, FieldType
from automations import describe, editing, graph_edits, selectors
from automations.dry_run import DryRun, series_dry_run
from automations.forms import DryRunForm
from automations.graph_edits import Edge, EditError
from automations.models import Series, SeriesStatus, SeriesVersion
from automations.periods import DEFAULT_PERIOD
from automations.step_forms import StepForm, form_for
from automations.steps import STEP_KINDS
from automations.steps.update_contact import SETTABLE_FIELDS
from automations.tree import step_tree
from automations.views.common import names_for_versions, series_or_404
from automations.views.step_rows import step_rows
from campaigns.models import EmailTemplate
from esp.models import Role, Workspace
from esp.web import WorkspaceView, request_user

# The order of the "add a step" chooser: what marketers add most first.
ADD_ORDER = (
    "send", "wait", "wait_for_event", "condition", "split", "wait_until", "update_contact", "webhook", "notify", "exit",
)  # fmt: skip


def _edited_version(series: Series) -> SeriesVersion | None:
    """What the builder shows: the draft when there is one, else the version that runs."""
    return selectors.series_latest_version(series=series)


def _choices(workspace: Workspace, steps: dict[str, Any]) -> dict[str, list[tuple[Any, Any]]]:
    """What the panel's selects offer: only this workspace's templates, lists and fields."""
    templates = list(EmailTemplate.objects.in_workspace(workspace).order_by("name").values_list("pk", "name"))
    lists = list(audience_selectors.lists(workspace=workspace).order_by("name").values_list("pk", "name"))
    fields = list(CustomField.objects.in_workspace(workspace).order_by("key").values_list("key", "label"))
    dates = [k for k, _t in CustomField.objects.in_workspace(workspace)
             .filter(type__in=(FieldType.DATE, FieldType.DATETIME)).values_list("key", "type")]  # fmt: skip
    sends = [s["key"] for s in steps.get("steps", []) if s.get("type") == "send"]
    return {
        "template": [("", _("— choose a template —")), *templates],
        "list": [("", "—"), *lists],
        "field": [("", "—"), *[(f, f) for f in SETTABLE_FIELDS], *fields],
        "attribute": [("", _("— none: a time of day —")), ("birth_date", _("birth date")), *[(d, d) for d in dates]],
        "email_step": [("", "—"), *[(k, k) for k in sends]],
    }


class SeriesBuilderView(WorkspaceView):
    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        return self._render(request, series, step_key=request.GET.get("step", ""), edge=request.GET.get("edge", ""))

    def post(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = series_or_404(self.workspace, series_id)
        op = request.POST.get("op", "")
        key = request.POST.get("step", "")
        form: StepForm | None = None
        try:
            if op == "update":
                form, selected = self._update(request, series, key)
                if form is not None:
                    return self._render(request, series, step_key=key, form=form, status=400)
            elif op == "undo":
                what = _("Undone: %(what)s") % {
                    "what": editing.draft_undo(workspace=self.workspace, series_id=series.pk)
                }
                if request.htmx:  # type: ignore[attr-defined]
                    return self._render(request, series, notice=what)
                messages.success(request, what)
                selected = ""
            else:
                selected = self._edit(request, series, op, key)
        except EditError as error:
            return self._render(request, series, step_key=key, error=str(error), status=400)
        if request.htmx:  # type: ignore[attr-defined]
            return self._render(request, series, step_key=selected)
        url = reverse("series-builder", args=[series.pk])
        return redirect(f"{url}?step={selected}" if selected else url)

    def _edit(self, request: HttpRequest, series: Series, op: str, key: str) -> str:
        """Apply a structural edit; the key of the step to select after it."""
        post = request.POST
        selected = {"key": key}

        def edit(steps: dict[str, Any]) -> tuple[dict[str, Any], str]:
            if op == "insert":
                kind = post.get("kind", "")
                edge = Edge.parse(post.get("edge", ""))
                new, selected["key"] = graph_edits.insert_step(steps, edge, kind)
                label = STEP_KINDS[kind].label
                return new, _("added “%(kind)s”") % {"kind": label}
            if op == "delete":
                keep = post.get("keep") or None
                selected["key"] = ""
                return graph_edits.delete_step(steps, key, keep), _("deleted step %(key)s") % {"key": key}
            if op == "duplicate":
                new, selected["key"] = graph_edits.duplicate_step(steps, key)
                return new, _("duplicated step %(key)s") % {"key": key}
            if op == "up":
                return graph_edits.move_up(steps, key), _("moved step %(key)s up") % {"key": key}
            if op == "down":
                return graph_edits.move_down(steps, key), _("moved step %(key)s down") % {"key": key}
            if op == "move":
                edge = Edge.parse(post.get("edge", ""))
                return graph_edits.move_step(steps, key, edge), _("moved step %(key)s") % {"key": key}
            raise EditError(_("Unknown change."))

        editing.draft_edit(workspace=self.workspace, series_id=series.pk, edit=edit, user=request_user(request))
        return selected["key"]

    def _update(self, request: HttpRequest, series: Series, key: str) -> tuple[StepForm | None, str]:
        version = _edited_version(series)
        step = version.step(key) if version is not None else None
        if step is None:
            raise EditError(
                _("The step %(key)s is gone: someone changed the draft meanwhile; reload the page.") % {"key": key}
            )
        form = form_for(step.get("type", ""))(
            request.POST, choices=_choices(self.workspace, version.steps if version else {}), step=step
        )
        if not form.is_valid():
            return form, key
        settings = form.settings()
        if form.errors:  # JSON that does not parse
            return form, key

        def edit(steps: dict[str, Any]) -> tuple[dict[str, Any], str]:
            return graph_edits.update_step(steps, key, settings), _("changed step %(key)s") % {"key": key}

        editing.draft_edit(workspace=self.workspace, series_id=series.pk, edit=edit, user=request_user(request))
        return None, key

    def _render(
        self,
        request: HttpRequest,
        series: Series,
        *,
        step_key: str = "",
        edge: str = "",
        form: StepForm | None = None,
        error: str = "",
        notice: str = "",
        status: int = 200,
    ) -> HttpResponse:
        version = _edited_version(series)
        steps = version.steps if version is not None and isinstance(version.steps, dict) else {"steps": []}
        names = names_for_versions(self.workspace, series, version)
        problems = editing.draft_problems(self.workspace, series, steps)
        rows = {
            row["step"].key: {**row, "problems": problems.by_step.get(row["step"].key, [])}
            for row in step_rows(self.workspace, series, version, names, DEFAULT_PERIOD)
        }
        dry_form, dry_run, dry_note = self._dry_run(request, series, version, problems)
        if dry_run is not None:
            marks: dict[str, list[Any]] = defaultdict(list)
            for number, line in enumerate((line for line in dry_run.lines if line.step), start=1):
                marks[line.step].append((number, line))
            for key, row in rows.items():
                row["dry"] = marks.get(key, [])
        selected = version.step(step_key) if version is not None and step_key else None
        can_edit = self.can(Role.MARKETER) and series.status != SeriesStatus.ARCHIVED
        if selected is not None and form is None:
            kind_form = form_for(selected.get("type", ""))
            form = kind_form(
                initial=kind_form.initial_for(selected), choices=_choices(self.workspace, steps), step=selected
            )
        is_draft = version is not None and version.published_at is None
        context = {
            "series": series,
            "version": version,
            "is_draft": is_draft,
            "tree": step_tree(steps, rows),
            "trigger": describe.trigger_text(series.trigger or {}, names),
            "problems": problems,
            "selected": selected,
            "selected_row": rows.get(step_key),
            "form": form,
            "edge": edge,
            "error": error,
            "can_edit": can_edit,
            "kinds": [(name, STEP_KINDS[name].label) for name in ADD_ORDER if name in STEP_KINDS],
            "undo": editing.last_change(version),
            "event_names": event_names(workspace=self.workspace) if selected is not None else [],
            "split_rows": form.branch_rows() if form is not None and hasattr(form, "branch_rows") else [],
            "delete_keeps": _delete_keeps(selected),
            "move_targets": _move_targets(steps, selected) if selected is not None else [],
            "notice": notice,
            "goal_event": (series.goal or {}).get("event", ""),
            "dry_form": dry_form,
            "dry_run": dry_run,
            "dry_note": dry_note,
        }
        with timezone.override(self.workspace.zone):
            return render(request, "automations/builder.html", context, status=status)

    def _dry_run(
        self, request: HttpRequest, series: Series, version: SeriesVersion | None, problems: editing.Problems
    ) -> tuple[DryRunForm, DryRun | None, str]:
        """The dry run drawn on the tree: the shown version replayed for one contact (`dry-*`
        query parameters); nothing is written, so viewers may run it too."""
        tz = self.workspace.zone
        bound = "dry-email" in request.GET
        form = DryRunForm(
            request.GET if bound else None,
            prefix="dry",
            initial={"since": (timezone.now().astimezone(tz) - dt.timedelta(days=30)).date()},
        )
        if not bound or not form.is_valid():
            return form, None, ""
        if version is None or problems.by_step:
            return form, None, _("Fix what the steps need first: a dry run walks a version that could be published.")
        contact = audience_selectors.contact_find(workspace=self.workspace, email=form.cleaned_data["email"])
        if contact is None:
            form.add_error("email", _("No contact with this address."))
            return form, None, ""
        since = dt.datetime.combine(form.cleaned_data["since"], dt.time.min, tzinfo=tz)
        run = series_dry_run(workspace=self.workspace, series=series, contact=contact, since=since, version=version)
        return form, run, ""


def _delete_keeps(step: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A branching step's delete asks which branch to keep: its exits, in words."""
    if step is None:
        return []
    exits = graph_edits.exits_of(step)
    if len(exits) < 2:
        return []
    return [(name, describe.exit_label(name, step)) for name, _target in exits]


def _move_targets(steps: dict[str, Any], step: dict[str, Any]) -> list[tuple[str, str]]:
    """Every place the step could go, in words, for the panel's "move to" (the keyboard's and
    the phone's way to do what dragging does)."""
    targets = [(str(Edge(None)), _("the start"))]
    for other in steps.get("steps", []):
        if other.get("key") == step.get("key"):
            continue
        for name, _target in graph_edits.exits_of(other):
            label = describe.exit_label(name, other)
            text = _("after %(key)s") % {"key": other["key"]} if name == "next" else f"{other['key']} → {label}"
            targets.append((str(Edge(other["key"], name)), text))
    return targets
